"""The domain model: curve knots, arc intensity lookup, slack distribution, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from setlist.errors import ArcError
from setlist.models import (
    Arc,
    Curve,
    DurationBounds,
    Keyframe,
    Phase,
    TagRule,
    TempoRange,
    distribute,
)
from setlist.units import format_duration

MIN = 60.0


def curve(*values: float) -> Curve:
    """A curve through `values` spread evenly over the phase."""
    return Curve(tuple(Keyframe(v) for v in values))


def phase(name: str, minutes: float, *values: float, **kwargs: object) -> Phase:
    return Phase(name, minutes * MIN, curve(*values), **kwargs)  # type: ignore[arg-type]


# --- Curve.knots ------------------------------------------------------------------------


def test_constant_curve_has_one_knot_at_the_start() -> None:
    xs, ys = Curve.constant(0.3).knots(600)
    np.testing.assert_array_equal(xs, [0.0])
    np.testing.assert_array_equal(ys, [0.3])


def test_constant_curve_samples_flat() -> None:
    got = Curve.constant(0.3).sample(np.array([0.0, 0.5, 1.0]), 600)
    np.testing.assert_allclose(got, [0.3, 0.3, 0.3])


def test_start_end_pair_spans_the_phase() -> None:
    xs, ys = curve(0.2, 0.8).knots(600)
    np.testing.assert_allclose(xs, [0.0, 1.0])
    np.testing.assert_allclose(ys, [0.2, 0.8])


def test_unset_values_spread_evenly_over_the_phase() -> None:
    xs, _ = curve(0.1, 0.2, 0.3, 0.4, 0.5).knots(600)
    np.testing.assert_allclose(xs, [0.0, 0.25, 0.5, 0.75, 1.0])


def test_seconds_and_fractions_mix() -> None:
    c = Curve(
        (
            Keyframe(0.1, seconds=0),
            Keyframe(0.5, seconds=150),
            Keyframe(0.9, fraction=0.5),
            Keyframe(0.4, seconds=600),
        )
    )
    xs, ys = c.knots(600)
    np.testing.assert_allclose(xs, [0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(ys, [0.1, 0.5, 0.9, 0.4])


def test_seconds_scale_with_duration_but_fractions_do_not() -> None:
    c = Curve((Keyframe(0.1), Keyframe(0.5, seconds=120), Keyframe(0.9, fraction=0.8)))
    xs_short, _ = c.knots(600)
    xs_long, _ = c.knots(1200)
    np.testing.assert_allclose(xs_short, [0.0, 0.2, 0.8])
    np.testing.assert_allclose(xs_long, [0.0, 0.1, 0.8])


def test_unset_middle_keyframes_spaced_between_known_neighbours() -> None:
    c = Curve(
        (
            Keyframe(0.0),
            Keyframe(0.1),
            Keyframe(0.2, fraction=0.6),
            Keyframe(0.3),
            Keyframe(0.4),
        )
    )
    xs, _ = c.knots(600)
    np.testing.assert_allclose(xs, [0.0, 0.3, 0.6, 0.8, 1.0])


def test_unset_keyframes_between_two_set_ones() -> None:
    c = Curve(
        (
            Keyframe(0.0, seconds=60),
            Keyframe(0.1),
            Keyframe(0.2),
            Keyframe(0.3),
            Keyframe(0.4, seconds=300),
            Keyframe(0.5),
        )
    )
    xs, _ = c.knots(600)
    np.testing.assert_allclose(xs, [0.1, 0.2, 0.3, 0.4, 0.5, 1.0])


def test_last_keyframe_may_sit_before_the_end_and_is_then_held() -> None:
    c = Curve((Keyframe(0.2), Keyframe(0.8, fraction=0.5)))
    xs, _ = c.knots(600)
    np.testing.assert_allclose(xs, [0.0, 0.5])
    np.testing.assert_allclose(c.sample(np.array([0.25, 0.5, 0.9]), 600), [0.5, 0.8, 0.8])


@pytest.mark.parametrize(
    "keyframes",
    [
        (Keyframe(0.1, fraction=0.5), Keyframe(0.2, fraction=0.5)),
        (Keyframe(0.1, fraction=0.6), Keyframe(0.2, fraction=0.4)),
        (Keyframe(0.1, seconds=300), Keyframe(0.2, fraction=0.25)),
        (Keyframe(0.1), Keyframe(0.2, fraction=0.0)),  # unset first sits at 0 too
        (Keyframe(0.1, fraction=1.0), Keyframe(0.2)),  # unset last sits at 1 too
        (Keyframe(0.1, fraction=0.5), Keyframe(0.2), Keyframe(0.3, fraction=0.5)),
    ],
)
def test_non_increasing_times_raise(keyframes: tuple[Keyframe, ...]) -> None:
    with pytest.raises(ValueError, match="strictly increase"):
        Curve(keyframes).knots(600)


def test_keyframe_after_phase_end_raises_naming_both_times() -> None:
    c = Curve((Keyframe(0.1), Keyframe(0.5, seconds=700)))
    with pytest.raises(ValueError, match="after the phase ends") as info:
        c.knots(600)
    assert format_duration(700) in str(info.value)
    assert format_duration(600) in str(info.value)


@pytest.mark.parametrize("fraction", [1.5, -0.1])
def test_keyframe_fraction_outside_the_phase_raises(fraction: float) -> None:
    with pytest.raises(ValueError, match="lies outside its phase"):
        Keyframe(0.5, fraction=fraction)


def test_middle_keyframe_past_the_end_names_the_time() -> None:
    curve = Curve((Keyframe(0.1), Keyframe(0.5, seconds=900), Keyframe(0.2)))
    with pytest.raises(ValueError, match="after the phase ends"):
        curve.knots(600)


def test_keyframe_exactly_at_the_end_is_fine() -> None:
    xs, _ = Curve((Keyframe(0.1), Keyframe(0.5, seconds=600))).knots(600)
    assert xs[-1] == pytest.approx(1.0)


def test_phase_rejects_a_curve_that_overruns_it() -> None:
    with pytest.raises(ValueError, match="after the phase ends"):
        Phase("onset", 600, Curve((Keyframe(0.1), Keyframe(0.5, seconds=700))))


def test_empty_curve_raises() -> None:
    with pytest.raises(ValueError):
        Curve(())


@pytest.mark.parametrize("value", [-0.01, 1.01])
def test_keyframe_value_outside_unit_interval_raises(value: float) -> None:
    with pytest.raises(ValueError, match="outside 0-1"):
        Keyframe(value)


def test_keyframe_with_seconds_and_fraction_raises() -> None:
    with pytest.raises(ValueError):
        Keyframe(0.5, seconds=10, fraction=0.5)


# --- Arc.intensity_at / phase_index_at ---------------------------------------------------


@pytest.fixture
def arc() -> Arc:
    """0-10 min rises 0.2->0.6; 10-30 min 0.6->1.0->0.4; 30-40 min held at 0.1."""
    return Arc(
        "test",
        (
            phase("onset", 10, 0.2, 0.6),
            phase("peak", 20, 0.6, 1.0, 0.4),
            phase("return", 10, 0.1),
        ),
    )


def test_arc_length_starts_ends(arc: Arc) -> None:
    assert arc.length == 40 * MIN
    np.testing.assert_allclose(arc.starts, [0, 600, 1800])
    np.testing.assert_allclose(arc.ends, [600, 1800, 2400])


def test_intensity_at_scalar_returns_float(arc: Arc) -> None:
    value = arc.intensity_at(300)
    assert type(value) is float
    assert value == pytest.approx(0.4)
    assert type(arc.intensity_at(np.float64(300))) is float


@pytest.mark.parametrize("shape", [(5,), (2, 3), (1, 4, 2)])
def test_intensity_at_array_keeps_shape(arc: Arc, shape: tuple[int, ...]) -> None:
    t = np.linspace(0, arc.length, int(np.prod(shape))).reshape(shape)
    out = arc.intensity_at(t)
    assert isinstance(out, np.ndarray)
    assert out.shape == shape
    assert out.dtype == np.float64


def test_intensity_at_accepts_lists(arc: Arc) -> None:
    out = arc.intensity_at([0, 300, 600])
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [0.2, 0.4, 0.6])


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (0, 0.2),
        (150, 0.2 + 0.4 * 0.25),
        (300, 0.4),
        (450, 0.2 + 0.4 * 0.75),
        (600, 0.6),
        (900, 0.8),  # a quarter into peak: halfway from 0.6 to 1.0
        (1200, 1.0),
        (1350, 1.0 - 0.6 * 0.25),
        (1500, 0.7),
        (1799, 0.4 + 0.6 * (1 / 600)),
        (1800, 0.1),
        (2100, 0.1),
        (2400, 0.1),
    ],
)
def test_intensity_at_interpolates_linearly(arc: Arc, t: float, expected: float) -> None:
    assert arc.intensity_at(t) == pytest.approx(expected)


def test_intensity_held_flat_outside_the_session(arc: Arc) -> None:
    np.testing.assert_allclose(arc.intensity_at([-1e6, -60, -0.001]), [0.2, 0.2, 0.2])
    np.testing.assert_allclose(arc.intensity_at([2400.001, 3000, 1e6]), [0.1, 0.1, 0.1])


def test_discontinuity_at_a_boundary_is_kept(arc: Arc) -> None:
    boundary = 1800.0
    before = arc.intensity_at(np.nextafter(boundary, 0))
    at = arc.intensity_at(boundary)
    assert before == pytest.approx(0.4)
    assert at == pytest.approx(0.1)
    # and vectorised the same way
    np.testing.assert_allclose(
        arc.intensity_at(np.array([boundary - 1e-6, boundary])), [0.4, 0.1], atol=1e-8
    )


def test_step_between_constant_phases() -> None:
    a = Arc("step", (phase("low", 5, 0.2), phase("high", 5, 0.8)))
    assert a.intensity_at(299.999) == pytest.approx(0.2)
    assert a.intensity_at(300) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("t", "index"),
    [
        (-10, 0),
        (0, 0),
        (599.999, 0),
        (600, 1),  # a boundary belongs to the phase that starts there
        (600.001, 1),
        (1799.999, 1),
        (1800, 2),
        (2399.999, 2),
        (2400, 2),  # the end is clamped to the last phase
        (1e6, 2),
    ],
)
def test_phase_index_at(arc: Arc, t: float, index: int) -> None:
    assert int(arc.phase_index_at(t)) == index


def test_phase_index_at_is_vectorised(arc: Arc) -> None:
    got = arc.phase_index_at(np.array([[0, 600], [1800, 2400]]))
    np.testing.assert_array_equal(got, [[0, 1], [2, 2]])


keyframe_values = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def curves(draw: st.DrawFn) -> Curve:
    values = draw(st.lists(keyframe_values, min_size=1, max_size=5))
    if len(values) > 1 and draw(st.booleans()):
        fractions = sorted(
            draw(
                st.lists(
                    st.integers(min_value=0, max_value=100),
                    min_size=len(values),
                    max_size=len(values),
                    unique=True,
                )
            )
        )
        return Curve(
            tuple(Keyframe(v, fraction=f / 100) for v, f in zip(values, fractions, strict=True))
        )
    return Curve(tuple(Keyframe(v) for v in values))


@st.composite
def arcs(draw: st.DrawFn) -> Arc:
    n = draw(st.integers(min_value=1, max_value=6))
    phases = tuple(
        Phase(
            f"p{i}",
            draw(st.floats(min_value=1, max_value=60)) * MIN,
            draw(curves()),
        )
        for i in range(n)
    )
    return Arc("random", phases)


@settings(max_examples=100, deadline=None)
@given(arcs())
def test_intensity_stays_within_keyframe_values_and_matches_scalar(a: Arc) -> None:
    values = [k.value for p in a.phases for k in p.intensity.keyframes]
    dense = np.linspace(-60, a.length + 60, 2000)
    out = a.intensity_at(dense)
    assert out.shape == dense.shape
    assert np.all(out >= min(values) - 1e-12)
    assert np.all(out <= max(values) + 1e-12)
    # vectorised == loop, on a coarser grid plus every boundary and its neighbours
    t = np.concatenate(
        (dense[::25], a.starts, a.ends, np.nextafter(a.ends, 0), np.nextafter(a.starts, -1))
    )
    looped = np.array([a.intensity_at(float(x)) for x in t])
    np.testing.assert_allclose(a.intensity_at(t), looped, rtol=0, atol=1e-12)


# --- distribute -------------------------------------------------------------------------


def B(lo: float, nom: float, hi: float) -> DurationBounds:
    return DurationBounds(lo * MIN, nom * MIN, hi * MIN)


def test_distribute_at_nominal_length_keeps_nominals() -> None:
    bounds = [B(5, 10, 20), B(10, 20, 40), DurationBounds.fixed(10 * MIN)]
    assert distribute(bounds, 40 * MIN) == pytest.approx([600, 1200, 600])


def test_distribute_shares_slack_in_proportion_to_nominal() -> None:
    bounds = [B(5, 10, 20), B(10, 20, 40), DurationBounds.fixed(10 * MIN)]
    # 10 extra minutes: onset takes 10/30 of it, peak 20/30, the fixed phase none
    got = distribute(bounds, 50 * MIN)
    assert got == pytest.approx([10 * MIN + 200, 20 * MIN + 400, 10 * MIN])
    assert sum(got) == pytest.approx(50 * MIN, abs=1e-6)


def test_distribute_shrinks_in_proportion_to_nominal() -> None:
    bounds = [B(5, 10, 20), B(10, 20, 40), DurationBounds.fixed(10 * MIN)]
    got = distribute(bounds, 34 * MIN)
    assert got == pytest.approx([10 * MIN - 120, 20 * MIN - 240, 10 * MIN])


def test_distribute_reshares_when_a_phase_hits_its_max() -> None:
    bounds = [B(5, 10, 11), B(10, 20, 40), DurationBounds.fixed(10 * MIN)]
    # proportional share would give onset +200 s, but it can only take +60 s
    got = distribute(bounds, 50 * MIN)
    assert got == pytest.approx([11 * MIN, 20 * MIN + 540, 10 * MIN])
    assert sum(got) == pytest.approx(50 * MIN, abs=1e-6)


def test_distribute_reshares_when_a_phase_hits_its_min() -> None:
    bounds = [B(9, 10, 20), B(10, 20, 40), B(1, 5, 10)]
    # shrink by 7 min: proportional share would take onset 2 min below nominal
    got = distribute(bounds, 28 * MIN)
    assert got[0] == pytest.approx(9 * MIN)
    assert sum(got) == pytest.approx(28 * MIN, abs=1e-6)
    # the rest is split 20:5 between peak and the third phase
    assert (20 * MIN - got[1]) / (5 * MIN - got[2]) == pytest.approx(4.0)


def test_distribute_cascading_bounds() -> None:
    bounds = [B(1, 10, 11), B(1, 10, 12), B(1, 10, 100)]
    got = distribute(bounds, 60 * MIN)
    assert got == pytest.approx([11 * MIN, 12 * MIN, 37 * MIN])


def test_distribute_reaches_the_extremes() -> None:
    bounds = [B(5, 10, 20), B(10, 20, 40), DurationBounds.fixed(10 * MIN)]
    assert distribute(bounds, 70 * MIN) == pytest.approx([20 * MIN, 40 * MIN, 10 * MIN])
    assert distribute(bounds, 25 * MIN) == pytest.approx([5 * MIN, 10 * MIN, 10 * MIN])


@pytest.mark.parametrize("length", [24 * MIN, 71 * MIN, 0.0, 10 * 3600.0])
def test_distribute_impossible_length_names_the_span(length: float) -> None:
    bounds = [B(5, 10, 20), B(10, 20, 40), DurationBounds.fixed(10 * MIN)]
    with pytest.raises(ArcError) as info:
        distribute(bounds, length)
    message = str(info.value)
    assert "25m-1h10m" in message
    assert format_duration(length) in message


def test_distribute_all_fixed_names_the_single_length() -> None:
    bounds = [DurationBounds.fixed(10 * MIN), DurationBounds.fixed(20 * MIN)]
    assert distribute(bounds, 30 * MIN) == pytest.approx([600, 1200])
    with pytest.raises(ArcError, match=r"can last 30m in all, not 40m"):
        distribute(bounds, 40 * MIN)


@st.composite
def bounds_and_length(draw: st.DrawFn) -> tuple[list[DurationBounds], float]:
    seconds = st.floats(min_value=1, max_value=3600, allow_nan=False)
    bounds = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        lo, nom, hi = sorted(draw(st.lists(seconds, min_size=3, max_size=3)))
        bounds.append(
            DurationBounds.fixed(nom) if draw(st.booleans()) else DurationBounds(lo, nom, hi)
        )
    lo = sum(b.minimum for b in bounds)
    hi = sum(b.maximum for b in bounds)
    length = draw(st.floats(min_value=lo, max_value=hi)) if hi > lo else lo
    return bounds, length


@settings(max_examples=100, deadline=None)
@given(bounds_and_length())
def test_distribute_property(case: tuple[list[DurationBounds], float]) -> None:
    bounds, length = case
    got = distribute(bounds, length)
    assert len(got) == len(bounds)
    assert abs(sum(got) - length) <= 1e-6
    nominal = sum(b.nominal for b in bounds)
    for d, b in zip(got, bounds, strict=True):
        assert b.minimum - 1e-9 <= d <= b.maximum + 1e-9
        if b.is_fixed:
            assert d == b.nominal
        # every phase moves the same way as the total, never against it
        if length >= nominal:
            assert d >= b.nominal - 1e-9
        else:
            assert d <= b.nominal + 1e-9


@settings(max_examples=100, deadline=None)
@given(bounds_and_length(), st.floats(min_value=1, max_value=3600))
def test_distribute_refuses_lengths_outside_the_span(
    case: tuple[list[DurationBounds], float], excess: float
) -> None:
    bounds, _ = case
    lo = sum(b.minimum for b in bounds)
    hi = sum(b.maximum for b in bounds)
    with pytest.raises(ArcError, match="in all"):
        distribute(bounds, hi + excess)
    if lo - excess > 0:
        with pytest.raises(ArcError, match="in all"):
            distribute(bounds, lo - excess)


# --- Arc.with_length --------------------------------------------------------------------


def flexible_arc() -> Arc:
    return Arc(
        "flex",
        (
            Phase("onset", 10 * MIN, curve(0.2, 0.5), bounds=B(5, 10, 20)),
            Phase("peak", 20 * MIN, curve(0.5, 0.9), bounds=B(10, 20, 40)),
            Phase("integration", 10 * MIN, curve(0.2)),
        ),
        dose_at=60,
    )


@pytest.mark.parametrize("minutes", [25, 34, 40, 50, 70])
def test_with_length_returns_an_arc_of_that_length(minutes: float) -> None:
    a = flexible_arc()
    b = a.with_length(minutes * MIN)
    assert b.length == pytest.approx(minutes * MIN, abs=1e-6)
    assert [p.name for p in b.phases] == [p.name for p in a.phases]
    assert b.phases[2].duration == 10 * MIN  # the phase without bounds stays put
    assert b.dose_at == 60
    assert (b.name, b.tolerance) == (a.name, a.tolerance)
    assert a.length == 40 * MIN  # the original is untouched


def test_with_length_matches_distribute() -> None:
    b = flexible_arc().with_length(50 * MIN)
    assert [p.duration for p in b.phases] == pytest.approx([800, 1600, 600])


def test_with_length_out_of_reach_raises() -> None:
    with pytest.raises(ArcError, match="25m-1h10m"):
        flexible_arc().with_length(2 * 3600)


def test_with_length_raises_when_no_phase_can_flex() -> None:
    a = Arc(
        "rigid",
        (
            phase("onset", 10, 0.2),
            Phase("peak", 20 * MIN, curve(0.8), bounds=DurationBounds.fixed(20 * MIN)),
        ),
    )
    assert a.with_length(30 * MIN).length == 30 * MIN
    with pytest.raises(ArcError, match="30m in all"):
        a.with_length(40 * MIN)


# --- validation ------------------------------------------------------------------------


def test_tempo_range() -> None:
    assert str(TempoRange(60, 80)) == "60-80 BPM"
    TempoRange(70, 70)
    with pytest.raises(ValueError, match="not increasing"):
        TempoRange(80, 60)
    with pytest.raises(ValueError):
        TempoRange(0, 60)


def test_tag_rule_refuses_a_tag_both_preferred_and_avoided() -> None:
    TagRule(prefer=("drone",), avoid=("percussion",))
    with pytest.raises(ValueError, match="drone"):
        TagRule(prefer=("drone", "piano"), avoid=("drone",))


@pytest.mark.parametrize(("lo", "nom", "hi"), [(0, 1, 2), (2, 1, 3), (1, 3, 2), (-1, 1, 1)])
def test_duration_bounds_must_be_ordered(lo: float, nom: float, hi: float) -> None:
    with pytest.raises(ValueError):
        DurationBounds(lo, nom, hi)


def test_duration_bounds_fixed() -> None:
    assert DurationBounds.fixed(60).is_fixed
    assert not DurationBounds(30, 60, 90).is_fixed


def test_phase_valid_defaults() -> None:
    p = phase("onset", 10, 0.2)
    assert not p.flexible
    assert Phase("peak", 600, curve(0.5), bounds=B(5, 10, 20)).flexible
    assert not Phase("peak", 600, curve(0.5), bounds=DurationBounds.fixed(600)).flexible


@pytest.mark.parametrize("crossfade", [600, 601, 1e6, -1])
def test_phase_crossfade_must_be_shorter_than_the_phase(crossfade: float) -> None:
    with pytest.raises(ValueError, match="crossfade"):
        Phase("onset", 600, curve(0.2), crossfade=crossfade)


def test_phase_crossfade_just_under_duration_is_fine() -> None:
    Phase("onset", 600, curve(0.2), crossfade=599)
    Phase("onset", 600, curve(0.2), crossfade=0)


@pytest.mark.parametrize("volume", [0.1, 6.0])
def test_phase_volume_cannot_boost(volume: float) -> None:
    with pytest.raises(ValueError, match="0 dB"):
        Phase("onset", 600, curve(0.2), volume_db=volume)
    Phase("onset", 600, curve(0.2), volume_db=-volume)


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_phase_needs_a_name(name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        Phase(name, 600, curve(0.2))


@pytest.mark.parametrize("duration", [0, -60])
def test_phase_needs_a_duration(duration: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        Phase("onset", duration, curve(0.2), crossfade=0)


def test_phase_duration_must_lie_within_its_bounds() -> None:
    with pytest.raises(ValueError, match="outside its bounds"):
        Phase("onset", 30 * MIN, curve(0.2), bounds=B(5, 10, 20))


@pytest.mark.parametrize(
    ("first", "second"), [("peak", "peak"), ("Peak", "peak"), ("ONSET", "onset")]
)
def test_arc_phase_names_unique_ignoring_case(first: str, second: str) -> None:
    with pytest.raises(ValueError, match="unique"):
        Arc("dup", (phase(first, 10, 0.2), phase(second, 10, 0.5)))


@pytest.mark.parametrize("dose_at", [20 * MIN, 30 * MIN, -1])
def test_arc_dose_must_fall_within_the_session(dose_at: float) -> None:
    phases = (phase("onset", 10, 0.2), phase("peak", 10, 0.5))
    with pytest.raises(ValueError, match="dose"):
        Arc("dose", phases, dose_at=dose_at)
    Arc("dose", phases, dose_at=20 * MIN - 1)


def test_arc_needs_phases_and_nonnegative_tolerance() -> None:
    with pytest.raises(ValueError):
        Arc("empty", ())
    with pytest.raises(ValueError, match="tolerance"):
        Arc("tol", (phase("onset", 10, 0.2),), tolerance=-1)
