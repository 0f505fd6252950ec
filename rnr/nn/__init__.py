"""Networks built on the core: the five topologies, the step-by-step decoder with attention, masked losses."""
from rnr.nn.losses import masked_loss
from rnr.nn.topologies import EncoderDecoder, ManyToManySync, ManyToOne, OneToMany, OneToOne

__all__ = ["OneToOne", "OneToMany", "ManyToOne", "EncoderDecoder", "ManyToManySync", "masked_loss"]
