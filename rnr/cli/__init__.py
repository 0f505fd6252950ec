"""The ``rnr`` command: ``main`` (parsers and dispatch, ``rnr fit``, ``rnr info``), ``common`` (what every command
shares), ``forecast`` and ``sequences`` (the commands of each task), ``config`` (TOML configs and ``--set``),
``demo`` (the main job) and ``tour`` (each topology on a small task)."""
