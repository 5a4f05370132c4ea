"""Language stage: every sample gets the episode's instructions in TraceGen's three styles (PAPER.md §3.2).

1. a short imperative command (at most 10 words),
2. an explicit step-by-step command (at most 20 words),
3. a natural, casual request (at most 15 words).

A dataset's own instructions are kept, first and unchanged. When it gives fewer than three, the missing styles are
filled from templates built around its first instruction (deterministic: the same text always gives the same
sentences). An episode with no text gets the official default sentence. A VLM captioner (the paper's route) is a
hook, off by default: ``captioner = "vlm"`` loads a local vision-language model with ``transformers`` and asks it
for the three styles from five frames (first, last, and the interior quarters), as the official script does.
"""

from __future__ import annotations

import json
import re
import zlib

import numpy as np

from tracegen.forge.clip import Clip, ClipError
from tracegen.forge.config import LanguageConfig

MAX_WORDS = (10, 20, 15)
STEP_TEMPLATES = (
    "move to the object, then {s}, and stop once it is done",
    "reach the target, {s}, then pull back and hold still",
)
CASUAL_TEMPLATES = ("could you {s} for me?", "hey, can you {s}?", "please {s}, if you don't mind")
PROMPT = (
    "These are five frames of one manipulation video, in order. Write three instructions for what is done, naming "
    "the object and how it is manipulated, without inventing objects: instruction_1, a short imperative command "
    "(at most 10 words); instruction_2, an explicit step-by-step command (at most 20 words); instruction_3, a "
    "natural casual request (at most 15 words). Answer with JSON only, keys instruction_1, instruction_2, "
    "instruction_3."
)


def _core(text: str) -> str:
    """The instruction as a lower-case imperative clause without final punctuation."""
    text = re.sub(r"\s+", " ", text.strip()).rstrip(".!?")
    return text[:1].lower() + text[1:]


def _clip_words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words[:limit])


def three_styles(text: str) -> list[str]:
    """The three styles around one instruction (template-based)."""
    core = _core(text)
    pick = zlib.crc32(core.encode())
    short = _clip_words(core, MAX_WORDS[0])
    steps = _clip_words(STEP_TEMPLATES[pick % len(STEP_TEMPLATES)].format(s=short), MAX_WORDS[1])
    casual = CASUAL_TEMPLATES[pick % len(CASUAL_TEMPLATES)].format(s=_clip_words(core, MAX_WORDS[2] - 4))
    return [short, steps, casual]


def expand_instructions(instructions: list[str], default: str) -> list[str]:
    """The dataset's instructions, completed to at least three with template styles."""
    own = [t.strip() for t in instructions if t and t.strip()]
    if not own:
        return [default]
    if len(own) >= 3:
        return own
    extra = [s for s in three_styles(own[0]) if _core(s) not in {_core(o) for o in own}]
    return own + extra[: 3 - len(own)]


class Language:
    """Stage ``language``: sets ``clip.instructions`` and every sample's instructions."""

    name = "language"

    def __init__(self, cfg: LanguageConfig = LanguageConfig()):
        self.cfg = cfg
        self.captioner = VLMCaptioner(cfg.weights) if cfg.captioner == "vlm" else None

    def setup(self) -> None:
        if self.captioner is not None:
            self.captioner.setup()

    def process(self, clip: Clip) -> Clip:
        texts = list(clip.instructions)
        if self.captioner is not None and len(texts) < 3:
            texts += self.captioner.describe(clip.rgb)
        if self.cfg.expand:
            texts = expand_instructions(texts, self.cfg.default)
        elif not texts:
            texts = [self.cfg.default]
        clip.instructions = texts
        for sample in clip.samples:
            sample.instructions = list(texts)
        return clip


class VLMCaptioner:
    """A local vision-language model (``transformers`` image-text-to-text pipeline) writing the three styles."""

    def __init__(self, weights: str | None):
        self.weights, self.pipe = weights, None

    def setup(self) -> None:
        from pathlib import Path

        from tracegen.forge.learned import ModelUnavailable, weights_dirs

        folders = [d / "vlm" for d in weights_dirs(self.weights)] + weights_dirs(self.weights)
        found = next((d for d in folders if (d / "config.json").is_file()), None)
        if found is None:
            raise ModelUnavailable(
                "VLM captioner: no local model (a folder with config.json) in "
                f"{', '.join(map(str, folders)) or 'nowhere (pass --weights DIR)'}; "
                "captioning is off by default (--captioner none)"
            )
        try:
            from transformers import pipeline
        except ImportError as e:
            raise ModelUnavailable(f"VLM captioner needs transformers ({e}): pip install transformers") from None
        self.pipe = pipeline("image-text-to-text", model=str(Path(found)))

    def describe(self, rgb: np.ndarray) -> list[str]:
        from PIL import Image

        T = len(rgb)
        frames = [rgb[int(round(i))] for i in np.linspace(0, T - 1, 5)]  # first, quarters, last
        content = [{"type": "image", "image": Image.fromarray(f)} for f in frames] + [{"type": "text", "text": PROMPT}]
        out = self.pipe(text=[{"role": "user", "content": content}], max_new_tokens=160)
        answer = (
            out[0]["generated_text"][-1]["content"]
            if isinstance(out[0]["generated_text"], list)
            else out[0]["generated_text"]
        )
        match = re.search(r"\{.*\}", answer, re.S)
        try:
            data = json.loads(match.group(0)) if match else {}
        except json.JSONDecodeError:
            data = {}
        texts = [str(data[k]) for k in ("instruction_1", "instruction_2", "instruction_3") if data.get(k)]
        if not texts:
            raise ClipError(f"the VLM captioner did not answer with the three instructions as JSON: {answer[:120]!r}")
        return texts
