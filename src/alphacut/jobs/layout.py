"""How a pipelined worker shares its cores between the model and the full-resolution work.

A worker runs the model on one image while it finishes the previous one (upsampling,
decontamination, encoding, verification). ONNX Runtime's intra-op threads get every core the
worker has (they sleep when idle, so the model takes the whole machine whenever the other side
leaves it); the question is how many threads the *finishing* side may run at once. Give it
every core as well and, on a CPU-bound machine, twice as many threads are busy as there are
cores: the model's threads and the tile pools thrash each other's caches and each image costs
more CPU (docs/speed.md, "Batches"). Give it too few and, on a GPU (where the model leaves the
CPU idle) or with huge photos, the finishing side becomes the bottleneck.

So the split is measured, image by image: ``FinishThreads`` starts from what the provider
implies (a GPU: every core; the CPU: the finishing side's measured share of a 12 MP image's
CPU time, about a quarter) and then watches the two sides' wall times. When finishing an image
takes longer than the model pass it overlaps, the finishing side is what the batch waits for:
it gets one more thread. When it would still keep up with one thread fewer, it gives one back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: the finishing side's share of a 12 MP photo's CPU time when the model runs on the CPU
#: (IS-Net with its U2-Netp second opinion: ~3.4 of ~4.6 CPU s are model passes; bench/engine_profile.py)
CPU_FINISH_SHARE = 0.27
#: give a thread back only when one fewer would still finish within this share of the model pass
#: (headroom against noise: a machine shared with other work varies image to image)
KEEP_UP = 0.8
#: weight of the newest image in the running estimates of the two sides' times
SMOOTHING = 0.5


def initial_threads(cores: int, provider: str) -> int:
    """The finishing side's threads before anything is measured."""
    if provider and provider != "CPUExecutionProvider":
        return max(1, cores)  # the model runs on a device: the CPU is the finishing side's
    return max(1, min(cores, round(cores * CPU_FINISH_SHARE)))


@dataclass
class FinishThreads:
    """The finishing side's thread count for one worker, adjusted as images finish."""

    cores: int
    threads: int
    #: running estimates (seconds) of the model pass and of finishing, per image
    infer_s: float | None = None
    finish_s: float | None = None
    history: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, cores: int, provider: str) -> "FinishThreads":
        return cls(max(1, cores), initial_threads(max(1, cores), provider))

    def observe(self, infer_s: float, finish_s: float) -> int:
        """One image's wall seconds on each side (the finishing side run on ``self.threads``
        threads); returns the thread count for the next image."""
        a = SMOOTHING
        self.infer_s = infer_s if self.infer_s is None else a * infer_s + (1 - a) * self.infer_s
        self.finish_s = finish_s if self.finish_s is None else a * finish_s + (1 - a) * self.finish_s
        t = self.threads
        if self.finish_s > self.infer_s and t < self.cores:
            self.threads = t + 1
            self.finish_s *= t / (t + 1)  # what it should take now (perfect scaling: a guess)
        elif t > 1 and self.finish_s * t / (t - 1) < KEEP_UP * self.infer_s:
            self.threads = t - 1
            self.finish_s *= t / (t - 1)
        self.history.append(self.threads)
        return self.threads
