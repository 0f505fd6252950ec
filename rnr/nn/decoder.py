"""The decoder shared by ``OneToMany`` and ``EncoderDecoder``: one step at a time, reading its previous output.

Each step reads the previous output (the embedding of the previous token for classification, the previous
values for regression; a start symbol or zeros at the first step) and, with attention, a context vector mixed
from the encoder's outputs with weights computed from the decoder's previous state:

    c_t = sum_s alpha_{t,s} e_s,  alpha_t = softmax_s(score(h_{t-1}, e_s))
    h_t = cell(h_{t-1}, [prev_t; c_t]),  y_t = b_o + [h_t; c_t] W_o

with ``score`` either ``(h W_q) . e_s`` ("dot", Luong et al. 2015) or ``v . tanh(h W_q + e_s W_k)``
("additive", Bahdanau et al. 2015). Beam search follows the usual recipe: keep the ``beam_size`` best prefixes
by summed log-probability, finished prefixes (those that emitted ``eos``) kept as they are; every example of a
batch is searched at once, its prefixes rows of one step call.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnr.core.checks import check_positive_int, check_tensor, checking_values, trusted
from rnr.core.rnn import take_rows


class Decoder(nn.Module):
    def __init__(self, owner, context_size: int | None):
        super().__init__()
        c = owner.config
        H, O = c["hidden_size"], c["output_size"]
        self.output_size = O
        self.classify = c["task"] == "classification"
        self.steps = c.get("steps")
        self.eos = c.get("eos")
        self.max_steps = check_positive_int(c["max_steps"], "max_steps")
        tf = c["teacher_forcing"]
        if isinstance(tf, bool) or not isinstance(tf, (int, float)) or not 0.0 <= tf <= 1.0:
            raise ValueError(f"teacher_forcing must be a probability in [0, 1], got {tf!r}")
        self.teacher_forcing = float(tf)
        if self.steps is not None:
            check_positive_int(self.steps, "steps")
        if self.eos is not None:
            if not self.classify:
                raise ValueError("eos (a stop token) needs task='classification'; regression outputs run for `steps`")
            if isinstance(self.eos, bool) or not isinstance(self.eos, int) or not 0 <= self.eos < O:
                raise ValueError(f"eos must be a class id in [0, output_size={O}), got {self.eos!r}")
        self.attention = c.get("attention")
        if self.attention not in (None, "dot", "additive"):
            raise ValueError(f"attention must be None, 'dot' or 'additive', got {self.attention!r}")
        C = context_size or 0
        feed = H if self.classify else O
        self.embed = nn.Embedding(O + 1, H) if self.classify else None  # id O is the start symbol
        self.embed_drop = nn.Dropout(c.get("embedding_dropout", 0.0))
        self.rnn = owner._rnn(feed + C, bidirectional=False)
        self.tie = bool(c.get("tie_embeddings", False))
        if self.tie and not self.classify:
            raise ValueError("tie_embeddings shares the output layer with the embedding of output tokens, so it "
                             "needs task='classification'")
        if self.tie:  # y_t = b_o + tanh([h_t; c_t] W_c) E^T, E the output tokens' embedding (Press & Wolf 2017)
            self.head_proj = nn.Linear(H + C, H)
            self.head_bias = nn.Parameter(torch.zeros(O))
        else:
            self.head = nn.Linear(H + C, O)
        if self.attention == "dot":
            self.att_q = nn.Linear(H, C, bias=False)
        elif self.attention == "additive":
            self.att_q = nn.Linear(H, H, bias=False)
            self.att_k = nn.Linear(C, H)
            self.att_v = nn.Linear(H, 1, bias=False)

    # one step -----------------------------------------------------------------------------------------------
    def _start(self, B: int, device) -> Tensor:
        if self.classify:
            return torch.full((B,), self.output_size, dtype=torch.long, device=device)
        return torch.zeros(B, self.output_size, device=device)

    def _keys(self, memory):
        """(encoder outputs, mask) -> (outputs, mask, keys): the additive score's e_s W_k, computed once for all
        decoder steps."""
        if not self.attention or memory is None or len(memory) == 3:
            return memory
        enc, mask = memory
        return enc, mask, self.att_k(enc) if self.attention == "additive" else enc

    def _attend(self, state, memory) -> Tensor:
        enc, mask, keys = self._keys(memory)  # (B, S, C), (B, S) or None, (B, S, H or C)
        h = (state[0] if isinstance(state, tuple) else state)[-1]  # (B, H): top layer's previous state
        if self.attention == "dot":
            scores = (enc @ self.att_q(h)[:, :, None]).squeeze(-1)  # (B, S)
        else:
            scores = self.att_v(torch.tanh(keys + self.att_q(h)[:, None])).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(scores, dim=-1)
        return torch.bmm(alpha[:, None], enc)[:, 0]  # (B, C)

    def _head(self, feats: Tensor) -> Tensor:
        if self.tie:
            return F.linear(torch.tanh(self.head_proj(feats)), self.embed.weight[: self.output_size], self.head_bias)
        return self.head(feats)

    def _read_prev(self, prev: Tensor) -> Tensor:
        """The decoder's input for its previous outputs: (..., ) ids -> embeddings, or values as they are."""
        return self.embed_drop(self.embed(prev)) if self.classify else prev

    def features(self, prev: Tensor, state, memory, inp: Tensor | None = None):
        """prev: (B,) ids or (B, O) values (or ``inp``, them already read) -> (what the head reads, [h_t; c_t]
        or h_t, next state)."""
        inp = self._read_prev(prev) if inp is None else inp
        if self.attention:
            ctx = self._attend(state, memory)
            inp = torch.cat([inp, ctx], dim=-1)
        with trusted():  # the decoder's own tensors: no scan of their values on every step
            out, state = self.rnn(inp[:, None], state)  # (B, 1, H)
        h = out[:, 0]
        return (torch.cat([h, ctx], dim=-1) if self.attention else h), state

    def step(self, prev: Tensor, state, memory):
        """prev: (B,) ids or (B, O) values -> (logits or values (B, O), next state)."""
        feats, state = self.features(prev, state, memory)
        return self._head(feats), state

    # whole sequences ----------------------------------------------------------------------------------------
    def _check_target(self, target) -> Tensor:
        check_tensor(target, "target")
        O = self.output_size
        if self.classify:
            if target.dim() != 2 or target.is_floating_point():
                raise ValueError(f"target must be (batch, steps) integer class ids, got dtype {target.dtype} and "
                                 f"shape {tuple(target.shape)}")
            if checking_values() and target.numel() and (int(target.min()) < 0 or int(target.max()) >= O):
                raise ValueError(f"target must hold class ids in [0, {O}), got values in "
                                 f"[{int(target.min())}, {int(target.max())}]")
        else:
            if target.dim() == 2 and O == 1:
                target = target[..., None]
            if target.dim() != 3 or target.shape[2] != O:
                raise ValueError(f"target must have shape (batch, steps, {O}), got {tuple(target.shape)}")
            target = target.float()
        return target

    def score(self, state, memory, target=None, steps=None, teacher_forcing=None) -> Tensor:
        """Outputs (B, T, O) for T = the target's length (or ``steps``), reading the target when forcing."""
        device = (state[0] if isinstance(state, tuple) else state).device
        B = (state[0] if isinstance(state, tuple) else state).shape[1]
        if target is not None:
            target = self._check_target(target)
            if target.shape[0] != B:
                raise ValueError(f"target must have one row per input (batch {B}), got {target.shape[0]}")
            T = target.shape[1]
        else:
            T = self.steps if steps is None else check_positive_int(steps, "steps")
            if T is None:
                raise ValueError("steps must be given (or set at construction) when there is no target to score")
        if teacher_forcing is None:  # in eval mode a target is scored fully forced: deterministic validation
            teacher_forcing = self.teacher_forcing if self.training else 1.0
        if isinstance(teacher_forcing, bool) or not isinstance(teacher_forcing, (int, float)) \
                or not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be a probability in [0, 1], got {teacher_forcing!r}")
        ratio = 0.0 if target is None else teacher_forcing
        start = self._start(B, device)
        memory = self._keys(memory)
        if ratio >= 1.0 and not self.attention:
            # full teacher forcing: every input is known, so the recurrence runs in one call
            prev = torch.cat([start[:, None], target[:, :-1]], dim=1)  # (B, T[, O])
            with trusted():  # the decoder's own tensors: embeddings of the target's ids, the state it was given
                out, _ = self.rnn(self._read_prev(prev), state)
            return self._head(out)  # (B, T, O)
        if ratio >= 1.0:
            # attention, fully forced: only the recurrence steps one at a time; the head (often the largest
            # layer, a vocabulary wide) runs once on all steps, as the one-call path above does
            inputs = self._read_prev(torch.cat([start[:, None], target[:, :-1]], dim=1))  # all at once
            feats = []
            for t in range(T):
                f, state = self.features(None, state, memory, inputs[:, t])
                feats.append(f)
            return self._head(torch.stack(feats, dim=1))  # (B, T, O)
        outs, prev = [], start
        for t in range(T):
            y, state = self.step(prev, state, memory)
            outs.append(y)
            forced = target is not None and (ratio >= 1.0 or (ratio > 0.0 and float(torch.rand(())) < ratio))
            prev = target[:, t] if forced else (y.argmax(-1) if self.classify else y.detach())
        return torch.stack(outs, dim=1)  # (B, T, O)

    @torch.no_grad()
    def generate(self, state, memory, steps=None, beam_size: int = 1) -> tuple[Tensor, Tensor]:
        check_positive_int(beam_size, "beam_size")
        if steps is not None:
            check_positive_int(steps, "steps")
        T = steps or self.steps or (self.max_steps if self.eos is not None else None)
        if T is None:
            raise ValueError("steps must be given (or set at construction, or an eos given) to generate")
        memory = self._keys(memory)
        if beam_size > 1:
            if not self.classify:
                raise ValueError("beam search needs task='classification'; use beam_size=1 for regression")
            return self._beam(state, memory, T, beam_size)
        h = state[0] if isinstance(state, tuple) else state
        B = h.shape[1]
        prev = self._start(B, h.device)
        lengths = torch.full((B,), T, dtype=torch.long)
        outs = []
        for t in range(T):
            y, state = self.step(prev, state, memory)
            prev = y.argmax(-1) if self.classify else y
            outs.append(prev)
            if self.eos is not None:
                ended = (prev.cpu() == self.eos) & (lengths == T)
                lengths[ended] = t
                if bool((lengths < T).all()):
                    break
        return torch.stack(outs, dim=1), lengths

    def _beam(self, state, memory, T: int, k: int) -> tuple[Tensor, Tensor]:
        """Beam search over the whole batch at once: (outputs (B, T_out), lengths before each stop token).

        Each example keeps ``k`` rows, row ``b * k + j`` its j-th prefix, and all of them take one step call
        together; each example then keeps its best ``k`` of its ``k * O`` candidates. An example stops once its
        best finished prefix scores at least as well as its best live one (log-probabilities only fall, so
        nothing can overtake it), or after ``T`` steps; its answer is kept and its rows leave the batch. The
        loop ends when every example has stopped.

        Equivalent to ``_beam_reference``, the plain loop over one example at a time; a test holds the two
        together, ties included (``topk`` over each example's candidates, ``argmax`` taking the first best).
        """
        h = state[0] if isinstance(state, tuple) else state
        B, device, O = h.shape[1], h.device, self.output_size
        # without attention the decoder never reads the encoder's outputs
        memory = self._keys(memory) if memory is not None and self.attention else None
        rows = torch.arange(B, device=device).repeat_interleave(k)  # (B*k,): example b's rows are b*k .. b*k+k-1
        st = take_rows(state, rows)
        mem = None if memory is None else tuple(None if m is None else m.index_select(0, rows) for m in memory)
        live = list(range(B))  # the examples still searching, in the order of their rows
        scores = torch.full((B, k), float("-inf"), device=device)
        scores[:, 0] = 0.0  # one live prefix per example to start with
        done = torch.zeros(B, k, dtype=torch.bool, device=device)  # prefixes that emitted eos
        seqs = torch.zeros(B * k, 0, dtype=torch.long, device=device)  # (n*k, t)
        prev = self._start(B * k, device)
        results = [None] * B
        for t in range(T):
            n = len(live)
            logits, st = self.step(prev, st, mem)  # (n*k, O)
            cand = scores.view(-1, 1) + F.log_softmax(logits, dim=-1)  # (n*k, O)
            ended = done.view(-1)
            if ended.any():  # a finished prefix continues only as itself, at no cost
                cand[ended] = float("-inf")
                cand[ended, self.eos] = scores.view(-1)[ended]
            scores, flat = cand.view(n, k * O).topk(k, dim=1)  # (n, k): each example's best of its k * O
            beam = (flat // O + torch.arange(n, device=device)[:, None] * k).view(-1)  # (n*k,): the rows extended
            tok = (flat % O).view(-1)  # (n*k,)
            seqs = torch.cat([seqs[beam], tok[:, None]], dim=1)  # (n*k, t+1)
            done = done.view(-1)[beam].view(n, k)
            if self.eos is not None:
                done = done | (tok == self.eos).view(n, k)
            prev, st = tok, take_rows(st, beam)
            # an example stops once its best finished prefix scores at least its best live one (or all finished:
            # the best live is then -inf); every example stops after the last step
            best_done = scores.masked_fill(~done, float("-inf")).amax(1)  # (n,)
            best_live = scores.masked_fill(done, float("-inf")).amax(1)
            stop = done.any(1) & (best_done >= best_live) if t < T - 1 else torch.ones_like(done[:, 0])
            if not bool(stop.any()):
                continue
            # its answer: the best finished prefix where one finished, else the best prefix; first best on ties
            best = torch.where(done.any(1, keepdim=True), scores.masked_fill(~done, float("-inf")), scores)
            pick = best.argmax(1).tolist()  # (n,)
            for i in stop.nonzero()[:, 0].tolist():
                results[live[i]] = seqs[i * k + pick[i]]
            keep = (~stop).nonzero()[:, 0]  # (n',): the examples that search on
            if not len(keep):
                break
            kept = (keep[:, None] * k + torch.arange(k, device=device)).view(-1)  # (n'*k,): their rows
            live = [live[i] for i in keep.tolist()]
            scores, done, seqs, prev, st = scores[keep], done[keep], seqs[kept], prev[kept], take_rows(st, kept)
            mem = None if mem is None else tuple(None if m is None else m.index_select(0, kept) for m in mem)
        return self._pack(results, device)

    def _beam_reference(self, state, memory, T: int, k: int) -> tuple[Tensor, Tensor]:
        """The plain beam search that ``_beam`` is held to: one example at a time, its k prefixes in one batch."""
        h = state[0] if isinstance(state, tuple) else state
        B, device = h.shape[1], h.device
        results = []
        for b in range(B):
            st = take_rows(state, torch.full((k,), b, device=device))
            mem = None  # without attention the decoder never reads the encoder's outputs
            if memory is not None and self.attention:
                enc, mask, keys = self._keys(memory)
                mem = (enc[b : b + 1].expand(k, -1, -1), None if mask is None else mask[b : b + 1].expand(k, -1),
                       keys[b : b + 1].expand(k, -1, -1))
            scores = torch.full((k,), float("-inf"), device=device)
            scores[0] = 0.0  # one live prefix to start with
            seqs = torch.zeros(k, 0, dtype=torch.long, device=device)
            done = torch.zeros(k, dtype=torch.bool, device=device)
            prev = self._start(k, device)
            for _ in range(T):
                logits, st = self.step(prev, st, mem)
                logp = F.log_softmax(logits, dim=-1)  # (k, O)
                cand = scores[:, None] + logp
                if done.any():  # a finished prefix continues only as itself, at no cost
                    cand[done] = float("-inf")
                    cand[done, self.eos] = scores[done]
                top, flat = cand.view(-1).topk(k)
                beam, tok = flat // self.output_size, flat % self.output_size
                seqs = torch.cat([seqs[beam], tok[:, None]], dim=1)
                done = done[beam] | (tok == self.eos) if self.eos is not None else done[beam]
                scores, prev, st = top, tok, take_rows(st, beam)
                # log-probabilities only fall, so once a finished prefix scores best, nothing can overtake it
                if bool(done.all()) or (done.any() and scores[done].max() >= scores[~done].max()):
                    break
            scores = scores.masked_fill(~done, float("-inf")) if done.any() else scores
            results.append(seqs[int(scores.argmax())])
        return self._pack(results, device)

    def _pack(self, results: list[Tensor], device) -> tuple[Tensor, Tensor]:
        """Each example's best sequence -> (outputs (B, T_out) padded with eos (or 0), lengths before eos)."""
        B, T_out = len(results), max(r.shape[0] for r in results)
        fill = self.eos if self.eos is not None else 0
        out = torch.full((B, T_out), fill, dtype=torch.long, device=device)
        lengths = torch.empty(B, dtype=torch.long)
        for b, r in enumerate(results):
            out[b, : r.shape[0]] = r
            stop = (r == self.eos).nonzero() if self.eos is not None else r.new_empty(0, 1)
            lengths[b] = int(stop[0, 0]) if len(stop) else r.shape[0]
        return out, lengths
