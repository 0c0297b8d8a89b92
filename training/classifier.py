"""IntentClassifier: a trained checkpoint turned into answers; the one object the CLI and the web app both use."""

from __future__ import annotations

import gc
import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import torch

from training.bags import Bags
from training.checkpoint import (
    CheckpointError,
    answering_parts,
    load_checkpoint_bytes,
    read_checkpoint_bytes,
    summary,
)
from training.context import Active, ContextRules
from training.fallback import calibrate, scaled_confidence
from training.model import IntentNet

TOP_K = 3


@dataclass(slots=True)
class Turn:
    """One answer in a conversation, and what it leaves for the next message."""

    prediction: Prediction
    filtered: list[str]  # intents ranked at or above the answer that their context_filter kept from answering
    active: Active  # the active contexts after this answer
    dropped: list[str]  # active names the model does not use, left out (a token made for another model)


@dataclass(slots=True)
class Prediction:
    """The answer to one message. `intent` is the most likely intent even when the bot falls back."""

    text: str
    intent: str
    confidence: float
    fallback: bool
    response: str
    alternatives: list[tuple[str, float]]  # the TOP_K most likely (intent, confidence), best first
    # why it fell back: "no_known_word", "out_of_scope", "low_confidence", "filtered" (context); None when it answered
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with confidences rounded to 6 places: the form the CLI prints and the API returns."""
        return {
            "text": self.text,
            "intent": self.intent,
            "confidence": round(self.confidence, 6),
            "fallback": self.fallback,
            "response": self.response,
            "alternatives": [{"intent": i, "confidence": round(c, 6)} for i, c in self.alternatives],
        }


class IntentClassifier:
    """Answers messages from one checkpoint. Build it with `from_checkpoint`; it is safe to share between threads."""

    def __init__(
        self, checkpoint: dict[str, Any], source: str = "<memory>", seed: int | None = None, digest: str | None = None
    ) -> None:
        parts = answering_parts(checkpoint, source)
        try:
            self.model = IntentNet(parts.model_config)
            # assign: the checkpoint's tensors become the parameters, and the random initial ones are freed, instead
            # of a second copy
            self.model.load_state_dict(parts.state_dict, assign=True)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{source}: damaged checkpoint ({type(exc).__name__}: {exc})"[:300]) from None
        self.vocabulary = parts.vocabulary
        self.feature_set = parts.feature_set
        self.stemmer = parts.feature_set.stemmer
        self.tags = parts.tags
        self.fallback_responses = parts.fallback_responses
        self.responses = parts.responses
        self.response_only = parts.response_only
        self.threshold = parts.threshold
        self.temperature = parts.temperature
        self.scale_by_known_words = parts.scale_by_known_words
        self.out_of_scope = self.tags.index(parts.out_of_scope_tag) if parts.out_of_scope_tag else -1
        self.context_rules = ContextRules(parts.contexts)
        self.model.eval()
        self.encoder = self.feature_set.encoder(self.vocabulary)
        self.metadata = {k: v for k, v in checkpoint.items() if k not in ("state_dict", "features", "responses")}
        self.summary = summary(checkpoint)
        self.digest = digest  # SHA-256 of the checkpoint file it was loaded from; None when built in memory
        self.source = source
        self._random = random.Random(seed)
        self._one_offset = torch.zeros(1, dtype=torch.long)

    @classmethod
    def from_checkpoint(cls, path: str | Path, seed: int | None = None) -> IntentClassifier:
        data = read_checkpoint_bytes(Path(path))
        checkpoint = load_checkpoint_bytes(data, path)
        return cls(checkpoint, source=str(path), seed=seed, digest=hashlib.sha256(data).hexdigest())

    def encode(self, message: str) -> list[int]:
        """The message's feature ids, read as the checkpoint's patterns were; empty when none is known."""
        return self.encoder(message)[0]

    def predict(self, message: str, threshold: float | None = None) -> Prediction:
        """Answer one message, on its own (every intent may answer, whatever its context_filter)."""
        ids, share = self.encoder(message)
        with torch.inference_mode():
            probs = self._probabilities(torch.tensor(ids, dtype=torch.long), self._one_offset)
        return self._answers([message], probs, [ids], [share], threshold)[0]

    def respond(self, message: str, active: Mapping[str, int | None], threshold: float | None = None) -> Turn:
        """Answer one message of a conversation whose active contexts are `active` (training/context.py).

        The intents ranked as `predict` ranks them, without those whose context_filter no active name meets; the
        best remaining one answers, or the fallback when its confidence is too low or nothing remains.
        """
        rules = self.context_rules
        if not rules:  # a model without context keys: every intent may answer, as in `predict`
            return Turn(self.predict(message, threshold), [], {}, sorted(active))
        active, dropped = rules.known(active)
        ids, share = self.encoder(message)
        with torch.inference_mode():
            probs = self._probabilities(torch.tensor(ids, dtype=torch.long), self._one_offset)
        eligible = rules.eligible(self.tags, active)
        answer = self._answers([message], probs, [ids], [share], threshold, eligible)[0]
        raw = probs[0].tolist()
        bar = raw[self.tags.index(answer.intent)]
        outranked = [j for j, ok in enumerate(eligible) if not ok and raw[j] >= bar]
        filtered = [self.tags[j] for j in sorted(outranked, key=lambda j: -raw[j])]
        return Turn(answer, filtered, rules.after(active, None if answer.fallback else answer.intent), dropped)

    def predict_batch(self, messages: Sequence[str], threshold: float | None = None) -> list[Prediction]:
        """Answer many messages in one forward pass; the same answers as `predict` one by one."""
        if not messages:
            return []
        with _collector_paused():
            ids, shares, probs = self._forward(messages)
            return self._answers(messages, probs, ids, shares, threshold)

    def probabilities(self, messages: Sequence[str]) -> torch.Tensor:
        """(messages, intents) calibrated probabilities, columns in the order of `tags` (not weighed by known
        words: the share of known words scales every intent's alike)."""
        return self._forward(messages)[2]

    def _forward(self, messages: Sequence[str]) -> tuple[list[list[int]], list[float], torch.Tensor]:
        """Each message's feature ids and known-word share, and the calibrated probabilities of the whole batch."""
        ids, shares = zip(*map(self.encoder, messages)) if messages else ((), ())
        with torch.inference_mode():
            return list(ids), list(shares), self._probabilities(*Bags.from_lists(ids).all())

    def _probabilities(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return calibrate(self.model.probabilities(ids, offsets), self.temperature)

    def _answers(
        self,
        messages: Sequence[str],
        probs: torch.Tensor,
        ids: Sequence[list[int]],
        shares: Sequence[float],
        threshold: float | None,
        eligible: Sequence[bool] | None = None,
    ) -> list[Prediction]:
        """Predictions from (messages, intents) probabilities. A message falls back when its confidence is below the
        threshold, when it has no known feature, and when its top intent is the out-of-scope one (whose own
        responses, if it has any, are the answer)."""
        limit = self.threshold if threshold is None else threshold
        filtering = eligible is not None and not all(eligible)
        # the filtered intents rank below every other, at -1
        ranked = probs.masked_fill(~torch.tensor(list(eligible)), -1.0) if filtering else probs
        top = torch.topk(ranked, min(TOP_K, len(self.tags)), dim=1)
        rows_values, rows_indices = top.values.tolist(), top.indices.tolist()
        all_filtered: Sequence[bool] = repeat(False)
        if filtering:
            all_filtered = [False] * len(messages)
            for row, indices in enumerate(rows_indices):
                rows_indices[row] = [i for i in indices if eligible[i]]
                rows_values[row] = rows_values[row][: len(rows_indices[row])]
                if not rows_indices[row]:  # every intent is filtered: the fallback, naming the best of them
                    best = int(probs[row].argmax())
                    rows_indices[row], rows_values[row], all_filtered[row] = [best], [float(probs[row, best])], True
        tags, responses, fallbacks, draw = self.tags, self.responses, self.fallback_responses, self._random.random
        scale, out_of_scope = self.scale_by_known_words, self.out_of_scope
        answers = []
        # this loop is most of a batch's Python time: positional arguments, random() instead of choice(), and the
        # reason worked out only for the messages that fall back
        for message, known, share, values, indices, nothing in zip(
            messages, ids, shares, rows_values, rows_indices, all_filtered
        ):
            if scale:
                values = [scaled_confidence(v, share) for v in values]
            first, confidence = indices[0], values[0]
            intent = tags[first]
            if known and confidence >= limit and first != out_of_scope and not nothing:  # NaN falls back too
                reason = None
                pool = responses[intent]
            else:
                reason = (
                    "filtered"
                    if nothing
                    else "no_known_word"
                    if not known
                    else "out_of_scope"
                    if first == out_of_scope
                    else "low_confidence"
                )
                pool = responses[intent] if first == out_of_scope else fallbacks
            alternatives = list(zip(map(tags.__getitem__, indices), values))
            answers.append(
                Prediction(
                    message, intent, confidence, reason is not None, pool[int(draw() * len(pool))], alternatives, reason
                )
            )
        return answers

    def info(self) -> dict[str, Any]:
        """What a health check or a user wants to know about the loaded model."""
        made = self.summary
        return {
            "path": self.source,
            "intents": len(self.tags),
            "response_only_intents": len(self.response_only),
            "vocabulary": len(self.vocabulary),
            "stemmer": self.stemmer,
            "patterns": made.patterns,
            "format_version": made.format_version,
            "created_at": made.created_at,
            "training_seconds": made.training_seconds,
            "fallback_threshold": self.threshold,
            "temperature": self.temperature,
            "metrics": made.metrics,
            "intents_sha256": made.intents_sha256,
            "context_names": sorted(self.context_rules.names),
            "digest": self.digest,
        }


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch builds its answers.

    A batch creates tens of thousands of small objects, none in reference cycles; that triggers full collections
    which walk every object torch and the model keep alive, long pauses in the middle of a batch (docs/design.md).
    Reference counting still frees everything as usual. The switch is process-wide: when batches
    overlap in several threads, the first to finish turns collection back on, which costs speed, never correctness.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
