"""Which parts of a text filter's fragment the deals' trigram index is asked for
(services/deals/text_plan.py): the rarest three-letter windows in the sample, or the
whole fragment when none is rare or there is no sample."""
from __future__ import annotations

from services.deals.text_plan import Sample, TextPlan, choose, windows_of


def sample(texts: list[str]) -> Sample:
    return Sample([(t.lower(), 1 / len(texts)) for t in texts])


# every text has "сделка" and "клиент"; each number is in one text of a thousand
TEXTS = sample([f"Сделка {n} Клиент {n * 7 % 1000}" for n in range(1000)])


def test_windows_are_runs_of_three_letters_or_digits() -> None:
    assert windows_of("Клиент 12") == ["Кли", "лие", "иен", "ент"]
    assert windows_of("ка 1") == [] and windows_of("ё") == [] and windows_of("") == []
    assert windows_of("ааааа") == ["ааа"]
    assert windows_of("ΟΣΑ 123") == ["123"]  # sigma lowers by context under ICU


def test_the_rarest_windows_are_asked_for_when_one_is_rare() -> None:
    plan = choose("Клиент 987", TEXTS)
    assert plan.windows == ("987",)
    assert set(choose("сделка 1234", TEXTS).windows) <= {"123", "234"}  # 1234: in none
    assert set(choose("Сделка 98765", TEXTS).windows) <= {"987", "876", "765"}


def test_the_whole_fragment_when_no_window_is_rare_or_there_is_no_sample() -> None:
    assert choose("Клиент", TEXTS) == TextPlan()
    assert choose("ка 1", TEXTS) == TextPlan()
    assert choose("Клиент 987", None) == TextPlan()
