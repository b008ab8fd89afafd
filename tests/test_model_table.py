"""`tfresnet list-models` from its shipped table: the table agrees with the registry and the built
models, the command imports no Keras, and its columns fit every name."""

import json
import re
import subprocess
import sys

import pytest

import tfresnet
from tfresnet.cli import main
from tfresnet.model_table import differences, matching, read_table
from tfresnet.models.profile import matching_models, profile_model

# One model from each builder module but vgg.py (the cheapest of each: VGG's 224-pixel models take
# ~5 s to build; test_vgg pins their parameter counts). `python scripts/model_table.py --check`
# (make model-table-check) rebuilds all of them.
SAMPLE = ("nielsen_conv1_sigmoid", "resnet20", "mobilenetv3_small")


def test_table_lists_every_registered_model_with_its_spec():
    rows = read_table()
    assert [row["name"] for row in rows] == tfresnet.list_models()
    for row in rows:
        spec = tfresnet.get_model_spec(row["name"])
        assert (row["family"], tuple(row["input_shape"])) == (spec.family, tuple(spec.default_input_shape))


@pytest.mark.parametrize("name", SAMPLE)
def test_table_rows_match_the_built_models(name):
    (row,) = [row for row in read_table() if row["name"] == name]
    assert profile_model(name) == row


@pytest.mark.parametrize("pattern", [None, "resnet", "vgg1?", "*_bn", "mlp", "v2", "mobilenet_v3", "nothing"])
def test_the_table_matches_a_pattern_as_the_registry_does(pattern):
    assert [row["name"] for row in matching(read_table(), pattern)] == matching_models(pattern)


def test_build_counts_the_same_as_the_table(capsys):
    assert main(["list-models", "convnet"]) == 0
    from_table = capsys.readouterr().out
    assert main(["list-models", "convnet", "--build"]) == 0
    assert capsys.readouterr().out == from_table
    assert from_table.count("\nconvnet") == 3


def test_list_models_imports_no_keras_and_its_columns_fit_every_name():
    code = ("import sys; from tfresnet.cli import main; code = main(['list-models']); "
            "print(json.dumps([code, sorted({'keras', 'tensorflow'} & set(sys.modules))]))")
    out = subprocess.run([sys.executable, "-c", f"import json; {code}"], capture_output=True, text=True,
                         check=True, timeout=60).stdout.splitlines()
    assert json.loads(out[-1]) == [0, []]
    header, rule, *lines = out[:-1]
    assert header.split() == ["name", "family", "input", "params", "MACs"] and set(rule) == {"-"}
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    rows = read_table()
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows):
        # Every cell starts in its column (left-aligned) or ends with it (right-aligned), two
        # spaces from the next: a long name never pushes the row out of line.
        cells = re.split(r"\s{2,}", line.strip())
        assert cells[:3] == [row["name"], row["family"], "x".join(map(str, row["input_shape"]))], line
        assert [line.index(c, s) == s for c, s in zip(cells[:3], starts[:3])] == [True] * 3, line
        assert len(line) == len(rule) and cells[3] == f"{row['params']:,}"


def test_differences_name_the_model_and_the_field():
    table = [{"name": "a", "family": "f", "input_shape": [8, 8, 3], "params": 10, "macs": 5},
             {"name": "b", "family": "f", "input_shape": [8, 8, 3], "params": 20, "macs": 5}]
    built = [{**table[0], "params": 11}, {**table[1], "name": "c"}]
    assert differences(built, table) == ["a: params is 11, the table says 10", "c: not in the table",
                                         "b: in the table, not built"]
    assert differences(table, table) == []
