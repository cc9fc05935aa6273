"""The proposed threshold and the calibration error, on figures worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler.distill import expected_calibration_error, propose_threshold


def test_threshold_is_the_lowest_confidence_whose_confident_set_reaches_the_target() -> None:
    confidence = np.array([0.99, 0.97, 0.95, 0.9, 0.8, 0.7, 0.6, 0.55])
    correct = np.array([True, True, True, True, True, False, True, False])
    # Top 5 agree 5/5; top 6: 5/6 = 0.833; top 7: 6/7 = 0.857; all: 6/8 = 0.75.
    assert propose_threshold(confidence, correct, 0.85) == (0.6, pytest.approx(6 / 7), 1 / 8, True)
    assert propose_threshold(confidence, correct, 0.9) == (0.8, 1.0, 3 / 8, True)
    threshold, _, escalated, reached = propose_threshold(confidence, ~correct, 0.9)
    assert (threshold, escalated, reached) == (1.0, 1.0, False)  # never reached: everything escalates


def test_ties_are_kept_together() -> None:
    confidence = np.array([0.9, 0.8, 0.8, 0.8])
    correct = np.array([True, True, False, True])
    # Confidence >= 0.8 holds all four (3/4); a threshold inside the tie does not exist.
    assert propose_threshold(confidence, correct, 0.8) == (0.9, 1.0, 0.75, True)
    assert propose_threshold(confidence, correct, 0.75) == (0.8, 0.75, 0.0, True)


def test_calibration_error_by_hand() -> None:
    confidence = np.array([0.95, 0.95, 0.65, 0.65])
    correct = np.array([True, True, True, False])
    # Bin [0.9, 1): accuracy 1 vs 0.95 -> 0.05; bin [0.6, 0.7): 0.5 vs 0.65 -> 0.15; each half the items.
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.05 + 0.5 * 0.15)
    assert expected_calibration_error(np.array([1.0]), np.array([True])) == pytest.approx(0.0)
