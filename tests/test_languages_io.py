"""Language files, load_language, bad input and the ``mdm-theory language`` command."""

import json

import numpy as np
import pytest

from mdm_exact._validate import LanguageError
from mdm_exact.runtime.cli import main
from mdm_exact.languages import HMM, PRESETS, IntervalLanguage, NGram, load_language, save_language
from mdm_exact.languages.io import language_to_dict


@pytest.mark.parametrize("suffix", ["json", "npz"])
@pytest.mark.parametrize("name", list(PRESETS))
def test_round_trip_is_exact(tmp_path, name, suffix):
    lang = load_language(name)
    path = save_language(lang, tmp_path / f"lang.{suffix}")
    back = load_language(path)
    a, b = language_to_dict(lang), language_to_dict(back)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), k
    assert type(back) is type(lang)


def test_json_format_has_exactly_the_documented_keys(tmp_path):
    save_language(load_language("paper-3gram"), tmp_path / "g.json")
    d = json.loads((tmp_path / "g.json").read_text())
    assert set(d) == {"kind", "order", "initial", "conditional"} and d["kind"] == "ngram" and d["order"] == 3
    assert len(d["initial"]) == 64 and len(d["conditional"]) == 64 and len(d["conditional"][0]) == 8
    save_language(load_language("paper-hmm"), tmp_path / "h.json")
    d = json.loads((tmp_path / "h.json").read_text())
    assert set(d) == {"kind", "initial", "transition", "emission"} and d["kind"] == "hmm"
    save_language(IntervalLanguage(4), tmp_path / "i.json")
    assert json.loads((tmp_path / "i.json").read_text()) == {"kind": "interval", "interval_length": 4}


def test_big_endian_contexts_in_files(tmp_path):
    """conditional[c] with c = x1 * V + x2 for a 3-gram: q(x3 | x1, x2)."""
    V = 2
    cond = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.25, 0.75]])
    init = np.array([0.1, 0.2, 0.3, 0.4])
    (tmp_path / "g.json").write_text(json.dumps({"kind": "ngram", "order": 3, "initial": init.tolist(), "conditional": cond.tolist()}))
    g = load_language(tmp_path / "g.json")
    # x = (1, 0, 1): initial[1*2+0] * cond[2, 1]
    np.testing.assert_allclose(g.log_prob([[1, 0, 1]]), np.log([0.3 * 0.5]), rtol=1e-15, atol=0)
    assert g.vocab_size == V


def _write(tmp_path, obj, name="bad.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


GOOD_HMM = {"kind": "hmm", "initial": [1.0, 0.0], "transition": [[0.5, 0.5], [0.0, 1.0]], "emission": [[1.0, 0.0], [0.3, 0.7]]}


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d.pop("emission"), "missing"),
        (lambda d: d.update(extra=1), "unknown"),
        (lambda d: d.update(kind="pcfg"), "unknown or missing 'kind'"),
        (lambda d: d.pop("kind"), "unknown or missing 'kind'"),
        (lambda d: d.update(transition=[[0.5, 0.5]]), "transition"),
        (lambda d: d.update(transition=[[0.5, 0.6], [0.0, 1.0]]), "sums to"),
        (lambda d: d.update(emission=[[1.5, -0.5], [0.3, 0.7]]), "negative"),
        (lambda d: d.update(initial=[float("nan"), 1.0]), "finite"),
        (lambda d: d.update(initial="abc"), "initial"),
        (lambda d: d.update(emission=[[1.0], [1.0], [1.0]]), "emission"),
    ],
)
def test_malformed_hmm_files(tmp_path, mutate, match):
    d = json.loads(json.dumps(GOOD_HMM))
    mutate(d)
    with pytest.raises(LanguageError, match=match):
        load_language(_write(tmp_path, d))


def test_good_hmm_file_loads(tmp_path):
    h = load_language(_write(tmp_path, GOOD_HMM, "good.json"))
    assert isinstance(h, HMM) and h.num_states == 2


@pytest.mark.parametrize(
    "obj,match",
    [
        ({"kind": "ngram", "order": 1, "initial": [1.0], "conditional": [[1.0]]}, "order"),
        ({"kind": "ngram", "order": 2.5, "initial": [0.5, 0.5], "conditional": [[1, 0], [0, 1]]}, "order"),
        ({"kind": "ngram", "order": 3, "initial": [0.5, 0.5], "conditional": [[1, 0], [0, 1]]}, "V\\^\\(n-1\\)"),
        ({"kind": "ngram", "order": 2, "initial": [1.0], "conditional": [[1, 0], [0, 1]]}, "initial"),
        ({"kind": "interval", "interval_length": 1}, "interval_length"),
        ({"kind": "interval", "interval_length": "5"}, "interval_length"),
        ([1, 2, 3], "JSON object"),
        ('{"kind": "hmm", "initial": [1.0', "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_malformed_files(tmp_path, obj, match):
    with pytest.raises(LanguageError, match=match):
        load_language(_write(tmp_path, obj))


def test_truncated_and_bad_npz(tmp_path):
    good = save_language(load_language("paper-2gram"), tmp_path / "g.npz")
    data = good.read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(LanguageError, match="npz"):
        load_language(tmp_path / "t.npz")
    np.savez(tmp_path / "k.npz", kind=np.array("ngram"), order=np.array(2), initial=np.ones(2) / 2)
    with pytest.raises(LanguageError, match="missing"):
        load_language(tmp_path / "k.npz")


def test_unknown_specs():
    with pytest.raises(ValueError, match="unknown language 'paper-5gram'"):
        load_language("paper-5gram")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_language("/nonexistent/lang.json")
    with pytest.raises(ValueError, match=".json or .npz"):
        save_language(load_language("paper-2gram"), "lang.txt")


# ------------------------------------------------------------------------ bad input to languages
@pytest.mark.parametrize("name", ["paper-2gram", "paper-hmm", "interval-l3"])
def test_bad_tokens_and_lengths(name):
    lang = load_language(name)
    V = lang.vocab_size
    L = 6
    with pytest.raises(ValueError, match="out of range"):
        lang.log_prob(np.full((1, L), V))
    with pytest.raises(ValueError, match="out of range"):
        lang.conditional_marginals(np.full((1, L), -1), np.ones((1, L), bool))
    with pytest.raises(ValueError, match="integer token"):
        lang.log_prob(np.full((1, L), 0.5))
    with pytest.raises(ValueError, match="does not match"):
        lang.log_prob_revealed(np.zeros((2, L), np.int64), np.ones((3, L), bool))
    with pytest.raises(ValueError, match="length"):
        lang.sample(3, 0)
    with pytest.raises(ValueError):
        lang.entropy(0)


def test_interval_length_must_be_a_multiple():
    with pytest.raises(ValueError, match="multiple of 5"):
        IntervalLanguage(5).sample(2, 7)
    with pytest.raises(ValueError, match="multiple of 3"):
        IntervalLanguage(3).log_prob(np.zeros((1, 4), np.int64))


def test_constructors_reject_bad_parameters():
    with pytest.raises(LanguageError, match="sums to"):
        HMM([1.0], [[0.9]], [[1.0]])
    with pytest.raises(LanguageError, match="negative"):
        NGram(2, [0.5, 0.5], [[1.2, -0.2], [0.5, 0.5]])
    with pytest.raises(LanguageError, match="finite"):
        NGram(2, [0.5, 0.5], [[np.nan, 1.0], [0.5, 0.5]])
    with pytest.raises(LanguageError, match="transition"):
        HMM([0.5, 0.5], [[1.0]], [[1.0], [1.0]])


# ------------------------------------------------------------------------ CLI
def test_cli_list_make_show(tmp_path, capsys):
    assert main(["language", "list"]) == 0
    out = capsys.readouterr().out
    assert "paper-hmm-t0" in out and "interval-hmm-l3" in out
    assert main(["language", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["default_seed"] == 2502
    f = tmp_path / "h.json"
    assert main(["language", "make", "paper-hmm", "--seed", "7", "-o", str(f)]) == 0
    assert "pruned" in capsys.readouterr().out
    h = load_language(f)
    assert np.array_equal(h.transition, load_language("paper-hmm", seed=7).transition)
    assert main(["language", "show", str(f), "--length", "4", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_states"] == 32 and info["vocab_size"] == 8 and info["L"] == 4
    assert info["support_size"] == h.support_size(4) and info["entropy_rate_se"] > 0
    assert main(["language", "show", "paper-3gram", "-L", "3", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["support_size"] == load_language("paper-3gram").support_size(3)
    assert info["entropy_rate_method"].startswith("exact")
    assert main(["language", "show", "interval-l4"]) == 0
    assert "support_size" in capsys.readouterr().out
    g = tmp_path / "g.npz"
    assert main(["language", "make", "paper-4gram-t0", "--reading", "divide", "-o", str(g)]) == 0
    assert load_language(g).order == 4


@pytest.mark.parametrize(
    "argv,match",
    [
        (["language", "show", "nope"], "unknown language"),
        (["language", "show", "paper-2gram", "-L", "0"], "length"),
        (["language", "show", "interval-l3", "-L", "4"], "multiple of 3"),
        (["language", "make", "nope", "-o", "x.json"], "unknown language preset"),
    ],
)
def test_cli_errors(argv, match, capsys):
    assert main(argv) == 2
    assert match in capsys.readouterr().err
