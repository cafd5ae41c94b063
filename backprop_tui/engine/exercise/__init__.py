"""Backprop by hand: the learner writes each gradient as an expression, checked against autograd."""

from backprop_tui.engine.exercise.answer import AnswerError, parse_answer
from backprop_tui.engine.exercise.exercise import Checked, Exercise, backward_order
from backprop_tui.engine.exercise.verdict import ACCEPTED, APPROXIMATE, ERROR, EXACT, TODO, WRONG, Verdict

__all__ = [
    "ACCEPTED", "APPROXIMATE", "AnswerError", "Checked", "ERROR", "EXACT", "Exercise", "TODO", "Verdict", "WRONG",
    "backward_order", "parse_answer",
]
