"""The functional-graph check: configs whose node graph a loader could never build (and
on which tf_keras spins forever) are refused; real graphs of every era pass."""

from __future__ import annotations

import copy

import pytest

from modelport.core.errors import ModelFileError
from modelport.loading.graphcheck import check_graph


def _keras2(layers, outputs):
    return {"class_name": "Functional", "config": {
        "name": "m", "layers": layers, "input_layers": [["in", 0, 0]], "output_layers": outputs}}


IN = {"class_name": "InputLayer", "name": "in", "config": {"name": "in"}, "inbound_nodes": []}
DENSE = {"class_name": "Dense", "name": "d", "config": {"name": "d"},
         "inbound_nodes": [[["in", 0, 0, {}]]]}
# tf.keras: a TFOpLambda receives its second operand as a call argument
ADD = {"class_name": "TFOpLambda", "name": "add", "config": {"name": "add"},
       "inbound_nodes": [["d", 0, 0, {"y": ["in", 0, 0], "name": None}]]}
GOOD = _keras2([IN, DENSE, ADD], [["add", 0, 0]])

KERAS3 = {"class_name": "Functional", "config": {
    "name": "m",
    "layers": [
        {"class_name": "InputLayer", "name": "x", "config": {"name": "x"}, "inbound_nodes": []},
        {"class_name": "Dense", "name": "d", "config": {"name": "d"}, "inbound_nodes": [
            {"args": [{"class_name": "__keras_tensor__",
                       "config": {"keras_history": ["x", 0, 0]}}], "kwargs": {}}]},
    ],
    "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}}


def test_real_graphs_pass():
    check_graph(GOOD)
    check_graph(KERAS3)


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["config"]["layers"][1].update(inbound_nodes=[[["nowhere", 0, 0, {}]]]),
     "'nowhere' node 0, which does not exist"),
    (lambda c: c["config"]["layers"][1].update(inbound_nodes=[[["in", 3, 0, {}]]]),
     "'in' node 3, which does not exist"),
    (lambda c: c["config"]["layers"][2]["inbound_nodes"][0][3].update(y=["ghost", 0, 0]),
     "'ghost' node 0"),
    (lambda c: c["config"]["layers"][1].update(inbound_nodes=[[["add", 0, 0, {}]]]),
     "depends on its own output"),
    (lambda c: c["config"].update(output_layers=[["d", 1, 0]]), "output_layers names 'd' node 1"),
    (lambda c: c["config"]["layers"].append(copy.deepcopy(DENSE)), "two layers are named 'd'"),
])
def test_unbuildable_graphs_are_refused(mutate, message):
    config = copy.deepcopy(GOOD)
    mutate(config)
    with pytest.raises(ModelFileError, match=message):
        check_graph(config)


def test_keras3_history_with_a_bad_index_is_refused():
    config = copy.deepcopy(KERAS3)
    hist = config["config"]["layers"][1]["inbound_nodes"][0]["args"][0]["config"]
    hist["keras_history"] = ["x", "zero", 0]
    with pytest.raises(ModelFileError, match="node index 'zero' is not an integer"):
        check_graph(config)
    hist["keras_history"] = ["x", 2, 0]
    with pytest.raises(ModelFileError, match="'x' node 2, which does not exist"):
        check_graph(config)
