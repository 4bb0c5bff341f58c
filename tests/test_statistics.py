"""Agreement statistics against values computed by hand from published 2×2 tables."""

from __future__ import annotations

import math

import pytest

from app.services.statistics import (
    Confusion,
    agreement_report,
    audit_sample_size,
    clopper_pearson_upper,
    cohen_kappa,
    gwet_ac1,
    wilson_interval,
)


def table(a: int, b: int, c: int, d: int) -> Confusion:
    """Rows: machine positive / negative; columns: human include / exclude (a b / c d)."""
    return Confusion(true_positive=a, false_positive=b, false_negative=c, true_negative=d)


def test_kappa_of_the_textbook_table():
    # Cohen's kappa worked example (50 items: 20 both yes, 5 / 10 split, 15 both no): po = 0.70, pe = 0.50.
    kappa, interval = cohen_kappa(table(20, 5, 10, 15))
    assert kappa == pytest.approx(0.40)
    assert interval[0] < 0.40 < interval[1]


def test_ac1_of_the_textbook_table():
    # pi = (25/50 + 30/50) / 2 = 0.55; pe = 2 * 0.55 * 0.45 = 0.495; AC1 = (0.70 - 0.495) / 0.505.
    ac1, _ = gwet_ac1(table(20, 5, 10, 15))
    assert ac1 == pytest.approx(0.205 / 0.505)


def test_kappa_paradox_table_where_ac1_behaves():
    # Feinstein & Cicchetti (1990): 118 both positive, 5 and 2 disagreements, 0 both negative. Agreement is
    # 94.4 % yet kappa is slightly negative; Gwet's AC1 stays near the observed agreement (about 0.94).
    kappa, _ = cohen_kappa(table(118, 5, 2, 0))
    ac1, _ = gwet_ac1(table(118, 5, 2, 0))
    assert kappa == pytest.approx((0.944 - 0.94528) / (1 - 0.94528), abs=1e-6)
    assert kappa < 0
    assert ac1 == pytest.approx((0.944 - 0.054432) / (1 - 0.054432), abs=1e-6)
    assert round(ac1, 2) == 0.94


def test_recall_specificity_and_work_saved():
    report = agreement_report(table(a=9, b=300, c=1, d=690))
    assert report["n"] == 1000
    assert report["recall"] == pytest.approx(0.9)
    assert report["specificity"] == pytest.approx(690 / 990)
    assert report["work_saved"] == pytest.approx(691 / 1000)
    low, high = report["recall_ci95"]
    assert low < 0.9 < high <= 1.0
    assert report["confusion"] == {"true_positive": 9, "false_negative": 1, "true_negative": 690,
                                   "false_positive": 300}


def test_empty_and_one_category_tables_are_undefined_not_errors():
    assert agreement_report(table(0, 0, 0, 0))["kappa"] is None
    assert agreement_report(table(0, 0, 0, 0))["recall"] is None
    kappa, interval = cohen_kappa(table(0, 0, 0, 10))  # both raters always negative: pe = 1
    assert kappa is None and interval is None


def test_wilson_interval_known_value():
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)


def test_clopper_pearson_upper_bounds():
    assert clopper_pearson_upper(0, 100) == pytest.approx(1 - 0.05 ** (1 / 100))  # the "rule of three" case
    assert clopper_pearson_upper(1, 100) == pytest.approx(0.04656, abs=1e-4)
    assert clopper_pearson_upper(5, 5) == 1.0
    assert clopper_pearson_upper(0, 0) is None


def test_audit_sample_size_for_a_bound():
    n = audit_sample_size(0.01)
    assert n == math.ceil(math.log(0.05) / math.log(0.99)) == 299
    assert clopper_pearson_upper(0, n) <= 0.01 < clopper_pearson_upper(0, n - 1)
