import math
import statistics
import time
import xml.etree.ElementTree as ET

from cnnlab.tracking._curves import learning_curves_svg
from cnnlab.training import EpochMetrics

NS = "{http://www.w3.org/2000/svg}"
NAN = math.nan


def history(train, val=None, acc=None):
    n = len(train)
    val, acc = val or [NAN] * n, acc or [NAN] * n
    return [
        EpochMetrics(i + 1, t, v, a, lr=1e-3, images_seen=100 * (i + 1), seconds=1.0)
        for i, (t, v, a) in enumerate(zip(train, val, acc))
    ]


def parse(svg):
    assert svg.lstrip().startswith("<?xml")
    return ET.fromstring(svg.encode())


def markers(root):
    """Plotted points per series, by its label."""
    return {
        g.get("data-label"): len(g.findall(f"{NS}circle"))
        for g in root.iter(f"{NS}g")
        if g.get("class") == "series"
    }


def texts(root):
    return [t.text for t in root.iter(f"{NS}text")]


def test_one_marker_per_finite_value():
    h = history(
        [2.0, 1.5, NAN, 1.0, math.inf],
        [2.1, math.inf, 1.7, 1.2, NAN],
        [0.3, 0.5, 0.6, NAN, 0.7],
    )
    root = parse(learning_curves_svg(h))
    assert markers(root) == {"train loss": 3, "validation loss": 3, "validation accuracy": 4}
    words = texts(root)
    for label in ("loss", "validation accuracy", "epoch", "cross-entropy loss", "accuracy"):
        assert label in words
    assert "no data" not in words
    assert {"1", "2", "3", "4", "5"} <= set(words)  # integer epoch ticks
    assert all("nan" not in v and "inf" not in v for e in root.iter() for v in e.attrib.values())


def test_no_validation_split_says_no_data():
    root = parse(learning_curves_svg(history([2.0, 1.0, 0.5])))
    assert markers(root) == {"train loss": 3, "validation loss": 0}
    assert texts(root).count("no data") == 1  # the accuracy panel only


def test_nothing_finite_at_all():
    root = parse(learning_curves_svg(history([NAN, math.inf])))
    assert texts(root).count("no data") == 2
    assert parse(learning_curves_svg([])) is not None


def test_title_is_escaped():
    svg = learning_curves_svg(history([1.0, 0.5], [1.1, 0.6], [0.5, 0.6]), 'a<b>&"c"\x01')
    assert 'a&lt;b&gt;&amp;"c"' in svg
    assert 'a<b>&"c"' in texts(parse(svg))


def test_single_epoch():
    root = parse(learning_curves_svg(history([0.7], [0.8], [0.9])))
    assert markers(root) == {"train loss": 1, "validation loss": 1, "validation accuracy": 1}
    assert "1" in texts(root)


def test_constant_series_and_round_ticks():
    root = parse(learning_curves_svg(history([1.0] * 4, [0.5, 0.4, 0.3, 0.2], [0.9] * 4)))
    words = texts(root)
    assert {"0.2", "0.4", "0.6", "0.8", "1.0"} <= set(words)
    assert not any(w and "000000" in w for w in words)  # no float noise in labels


def test_fast():
    h = history(
        [2.0 / (i + 1) for i in range(50)],
        [2.1 / (i + 1) for i in range(50)],
        [1 - 1 / (i + 2) for i in range(50)],
    )
    learning_curves_svg(h, "warm-up")
    times = []
    for _ in range(5):
        start = time.perf_counter()
        learning_curves_svg(h, "run")
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.05
