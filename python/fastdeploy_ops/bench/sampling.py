"""Benchmark cases of the sampling family: top-k renormalisation and top-k / top-p sampling
over the vocabularies of real models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import SAMPLING_BATCHES, VOCABULARIES, Case, CaseGenerator


def _probabilities(torch: Any, batch: int, vocab: int) -> Any:
    generator = torch.Generator(device="cuda").manual_seed(vocab + batch)
    logits = 3.0 * torch.randn(batch, vocab, device="cuda", generator=generator)
    return torch.softmax(logits, dim=-1)


SAMPLING_TOP_K, SAMPLING_TOP_P = 50, 0.9

ONE_PASS_NOTE = (
    "*BW* here is the fraction of the one-pass floor: bytes moved are the probabilities read "
    "once (batch · V · 4; the 8-byte samples are left out), so the floor is that read at the "
    "measured copy bandwidth (cold × BW; 22 µs at batch 128, V = 128256 on an H100 at "
    "2.97 TB/s), and *BW* = floor / cold time.")


def top_k_renorm_cases(torch: Any) -> Iterator[Case]:
    from .. import sampling

    for label, vocab in VOCABULARIES.items():
        for batch in SAMPLING_BATCHES:
            probs = _probabilities(torch, batch, vocab)
            out = torch.empty_like(probs)

            def torch_renorm(probs=probs):
                threshold = probs.topk(SAMPLING_TOP_K, dim=-1).values[:, -1:]
                kept = torch.where(probs >= threshold, probs, 0.0)
                return kept / kept.sum(dim=-1, keepdim=True).clamp_min(1e-8)

            yield Case(
                op="top_k_renorm_probs", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "V": vocab, "k": SAMPLING_TOP_K},
                implementations={
                    "fastdeploy_ops": lambda probs=probs, out=out:
                        sampling.top_k_renorm_probs(probs, SAMPLING_TOP_K, out=out),
                    "torch": torch_renorm,
                },
                bytes_moved=2 * 4 * probs.numel(),
            )


def top_p_renorm_cases(torch: Any) -> Iterator[Case]:
    from .. import sampling

    for label, vocab in VOCABULARIES.items():
        for batch in SAMPLING_BATCHES:
            probs = _probabilities(torch, batch, vocab)
            out = torch.empty_like(probs)

            def torch_renorm(probs=probs):
                # Sort, keep the entries whose preceding mass is below top_p, scatter back.
                sorted_probs, order = probs.sort(dim=-1, descending=True)
                before = sorted_probs.cumsum(dim=-1) - sorted_probs
                kept = torch.zeros_like(probs).scatter_(
                    1, order, torch.where(before < SAMPLING_TOP_P, sorted_probs, 0.0))
                return kept / kept.sum(dim=-1, keepdim=True).clamp_min(1e-8)

            yield Case(
                op="top_p_renorm_probs", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "V": vocab},
                implementations={
                    "fastdeploy_ops": lambda probs=probs, out=out:
                        sampling.top_p_renorm_probs(probs, SAMPLING_TOP_P, out=out),
                    "torch": torch_renorm,
                },
                bytes_moved=2 * 4 * probs.numel(),
            )


def top_k_top_p_sampling_cases(torch: Any) -> Iterator[Case]:
    from .. import sampling

    for label, vocab in VOCABULARIES.items():
        for batch in SAMPLING_BATCHES:
            probs = _probabilities(torch, batch, vocab)
            out = torch.empty(batch, device="cuda", dtype=torch.int64)

            def torch_sample(probs=probs):
                # Sort-based top-k / top-p, then an exponential race (graph-capturable sampling).
                sorted_probs, order = probs.sort(dim=-1, descending=True)
                before = sorted_probs.cumsum(dim=-1) - sorted_probs
                rank = torch.arange(probs.shape[1], device="cuda")
                keep = (rank < SAMPLING_TOP_K) & (before < SAMPLING_TOP_P)
                kept = torch.where(keep, sorted_probs, 0.0)
                race = kept / torch.empty_like(kept).exponential_()
                return order.gather(1, race.argmax(dim=-1, keepdim=True))

            yield Case(
                op="top_k_top_p_sampling_from_probs", label=label, tokens=batch, axis="batch",
                shape={"bs": batch, "V": vocab, "k": SAMPLING_TOP_K},
                implementations={
                    "fastdeploy_ops": lambda probs=probs, out=out:
                        sampling.top_k_top_p_sampling_from_probs(
                            probs, SAMPLING_TOP_K, SAMPLING_TOP_P, seed=1234, out=out),
                    "torch": torch_sample,
                },
                # One read of the probabilities: BW is then exactly the share of that floor.
                bytes_moved=4 * probs.numel(),
                note=ONE_PASS_NOTE,
            )


OPS: dict[str, CaseGenerator] = {
    "top_k_renorm_probs": top_k_renorm_cases,
    "top_p_renorm_probs": top_p_renorm_cases,
    "top_k_top_p_sampling_from_probs": top_k_top_p_sampling_cases,
}
