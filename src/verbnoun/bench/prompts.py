"""Every prompt string of LLaVAction, byte-exact with the released checkpoints (SPEC 3.1).

All prompt text of the project lives in this module. Options are shown as ``X. text`` joined by
``", "``; letters run A..Z, so a question has at most 26 options.
"""

from __future__ import annotations

from collections.abc import Sequence

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

SYSTEM = "You are a helpful assistant."
FIRST_PERSON_PREFIX = (
    "You are seeing this video from egocentric view and you are the person. "
    "Your hands are sometimes interacting with objects. What action are you doing? "
)
MQA = (
    FIRST_PERSON_PREFIX
    + "Given multiple choices, format your answer briefly such as 'A. move knife'. \n"
    + "Here are the options of actions you are selecting:\n{options}"
)
MQA_PRIOR_ACTIONS = (
    FIRST_PERSON_PREFIX
    + "\n{o2} seconds ago, you started an action {n2}. {o1} seconds ago, you started an action "
    + "{n1}. What action are you currently performing? Here are the options of actions you can "
    + "select:\n{options}"
)
# Multi-select questions (several labels per segment, issue 25): our wording; the release has no
# multi-label prompt (its code holds no Animal Kingdom / EPFL / MECCANO evaluation).
MULTI_ANSWER_SEPARATOR = "; "
MQA_MULTI = (
    "What actions are being performed in this video? More than one option may be correct: give "
    "every correct option, separated by semicolons, such as 'A. move knife; C. open drawer'. \n"
    "Here are the options of actions you are selecting:\n{options}"
)
DIRECT_NARRATION = (
    FIRST_PERSON_PREFIX
    + " What action are you performing? Give a short sentence such as 'move knife'."
)
CAPTION = (
    FIRST_PERSON_PREFIX
    + " Describe in details what you see from the video frames. You must talk in the first person "
    + "perspective. Try to focus on what you are doing. "
)
TEMPORAL_DETECTION = (
    "The provided video contains an action '{narration}' that lasts {duration} seconds. "
    "What is the relative start and end time of the action in seconds? "
    "Format it as 'start_timestamp: end_timestamp' and round to 2 decimal places."
)
TIME_INSTRUCTION = (
    "The provided video lasts for {duration:.3f} seconds, and {n_frames} frames are uniformly "
    "sampled from it."
)
# Data-generation prompts for GPT-4o captions and QA (SPEC 5(e), 5(f)): our wording, not the
# release's (its exact strings are not part of SPEC); the caption request itself is CAPTION.
CAPTION_SYSTEM = "You describe egocentric video frames to make training data for a video model."
CAPTION_LABEL_HINT = (
    "\nThe annotated action of this clip is '{narration}' (verb: {verb}, noun: {noun}). Describe "
    "the frames with that action in mind. Set agrees_with_label to false if the frames clearly "
    "do not show this action."
)
CAPTION_QA_SYSTEM = (
    "You write question-answer pairs about egocentric videos to train a video model."
)
CAPTION_QA_INSTRUCTION = (
    "This is a first-person description of a short egocentric video clip in which I am doing "
    "'{narration}':\n{caption}\nWrite {n} different free-form questions someone could ask about "
    "this clip, each with a short first-person answer that the description supports."
)
IMAGE_TOKEN = "<image>"
CHAT_QWEN_1_5 = (
    "<|im_start|>system\n" + SYSTEM + "<|im_end|>\n<|im_start|>user\n{user_turn}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
ASSISTANT_END = "<|im_end|>"


def letter(index: int) -> str:
    """The option letter of a 0-based index (A..Z)."""
    if not 0 <= index < len(LETTERS):
        raise ValueError(f"option index {index} outside A..Z")
    return LETTERS[index]


def format_options(texts: Sequence[str]) -> str:
    """``A. open door, B. close cupboard, ...``"""
    return ", ".join(f"{letter(i)}. {text}" for i, text in enumerate(texts))


def mqa_task(texts: Sequence[str]) -> str:
    """The multiple-choice task text for the given option texts (in letter order)."""
    return MQA.format(options=format_options(texts))


def mqa_multi_task(texts: Sequence[str]) -> str:
    """The multi-select task text (several options may be right) for the given option texts."""
    return MQA_MULTI.format(options=format_options(texts))


def mqa_prior_actions_task(texts: Sequence[str], prior: Sequence[tuple[float, str]]) -> str:
    """The task with the two previous actions: ``prior`` = [(offset2, narration2), (offset1, narration1)].

    Offsets are seconds before the current segment's start, shown with two decimals, the older
    action first.
    """
    if len(prior) != 2:
        raise ValueError("prior actions need exactly two (offset, narration) pairs")
    (o2, n2), (o1, n1) = prior
    return MQA_PRIOR_ACTIONS.format(
        o2=f"{o2:.2f}", n2=n2, o1=f"{o1:.2f}", n1=n1, options=format_options(texts)
    )


def time_instruction(duration: float, n_frames: int) -> str:
    return TIME_INSTRUCTION.format(duration=duration, n_frames=n_frames)


def user_turn(task: str, *, duration: float | None = None, n_frames: int | None = None) -> str:
    """``<image>\\n`` + optional time instruction + task (no space between the two)."""
    if duration is None:
        return f"{IMAGE_TOKEN}\n{task}"
    if n_frames is None:
        raise ValueError("the time instruction needs the number of frames")
    return f"{IMAGE_TOKEN}\n{time_instruction(duration, n_frames)}{task}"


def chat_prompt(turn: str) -> str:
    """The qwen_1_5 chat template up to the assistant's answer."""
    return CHAT_QWEN_1_5.format(user_turn=turn)


def mqa_answer(index: int, text: str) -> str:
    """The training target of a multiple-choice question: ``C. open door``."""
    return f"{letter(index)}. {text}"


def mqa_multi_answer(indices: Sequence[int], texts: Sequence[str]) -> str:
    """The target of a multi-select question: every correct option, ascending, ``B. walk; D. eat``
    (``indices`` into the question's options, ``texts`` the option texts)."""
    if not indices:
        raise ValueError("a multi-select answer needs at least one correct option")
    return MULTI_ANSWER_SEPARATOR.join(f"{letter(i)}. {texts[i]}" for i in sorted(indices))
