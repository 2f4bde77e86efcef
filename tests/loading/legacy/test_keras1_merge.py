"""A Keras 1 Sequential that starts with Merge([branch A, branch B]): rebuilt as a
functional model with nested branches, weights regrouped, outputs proven with numpy."""

from __future__ import annotations

import numpy as np

from modelport.loading.source import load

from tests.loading.legacy.oldfiles import write_h5

RNG = np.random.default_rng(21)


def a(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


W = {"dA1": [a(3, 4), a(4)], "dA2": [a(4, 2), a(2)], "out": [a(2 + 3, 1), a(1)]}
BN = [a(4), a(4), a(4), np.abs(a(4)) + 0.5]  # gamma, beta, running mean, running variance
LSTM = {g: [a(2, 3), a(3, 3), a(3)] for g in "icfo"}


def dense(name, units, **extra):
    return {"class_name": "Dense", "config": {"name": name, "output_dim": units,
                                              "init": "glorot_uniform", "bias": True, **extra}}


def config():
    branch_a = {"class_name": "Sequential", "config": [
        dense("dA1", 4, activation="relu", input_dim=3, batch_input_shape=[None, 3],
              input_dtype="float32"),
        {"class_name": "BatchNormalization", "config": {"name": "bnA", "mode": 0, "axis": -1,
                                                        "epsilon": 0.001, "momentum": 0.99}},
        dense("dA2", 2, activation="linear")]}
    branch_b = {"class_name": "Sequential", "config": [
        {"class_name": "LSTM", "config": {
            "name": "lstmB", "output_dim": 3, "batch_input_shape": [None, 5, 2],
            "input_dtype": "float32", "input_dim": 2, "input_length": 5,
            "inner_activation": "hard_sigmoid", "activation": "tanh", "consume_less": "cpu",
            "forget_bias_init": "one", "return_sequences": False}}]}
    return {"class_name": "Sequential", "config": [
        {"class_name": "Merge", "config": {"name": "merge_1", "mode": "concat",
                                           "concat_axis": -1, "layers": [branch_a, branch_b]}},
        dense("out", 1, activation="sigmoid")]}


def keras1_file(tmp_path):
    weights = {
        "dA1": [("dA1_W", W["dA1"][0]), ("dA1_b", W["dA1"][1])],
        "bnA": list(zip(["bnA_gamma", "bnA_beta", "bnA_running_mean", "bnA_running_std"], BN)),
        "dA2": [("dA2_W", W["dA2"][0]), ("dA2_b", W["dA2"][1])],
        "lstmB": [(f"lstmB_{p}_{g}", arr) for g in "icfo"
                  for p, arr in zip("WUb", LSTM[g])],
        "out": [("out_W", W["out"][0]), ("out_b", W["out"][1])],
    }
    # Keras 1 saved the flattened leaf layers of the branches, then the rest
    return write_h5(tmp_path / "keras1_merge.h5", config(), weights,
                    layer_names=["dA1", "bnA", "dA2", "lstmB", "out"])


def numpy_reference(xa, xb):
    h = np.maximum(xa @ W["dA1"][0] + W["dA1"][1], 0)
    gamma, beta, mean, var = BN
    h = gamma * (h - mean) / np.sqrt(var + 1e-3) + beta
    ya = h @ W["dA2"][0] + W["dA2"][1]

    def hs(z):
        return np.clip(0.2 * z + 0.5, 0, 1)

    hb = np.zeros((len(xb), 3), np.float32)
    c = np.zeros_like(hb)
    for t in range(xb.shape[1]):
        x = xb[:, t]
        gate = {g: x @ LSTM[g][0] + hb @ LSTM[g][1] + LSTM[g][2] for g in "icfo"}
        c = hs(gate["f"]) * c + hs(gate["i"]) * np.tanh(gate["c"])
        hb = hs(gate["o"]) * np.tanh(c)
    z = np.concatenate([ya, hb], axis=-1) @ W["out"][0] + W["out"][1]
    return 1 / (1 + np.exp(-z))


def test_keras1_sequential_merge_loads_and_computes(tmp_path):
    src = load(keras1_file(tmp_path))
    assert src.input_names == ["dA1_input", "lstmB_input"]
    assert any("sequential_merge_branches" in w for w in src.warnings)
    xa, xb = a(6, 3), a(6, 5, 2)
    got = src.predict({"dA1_input": xa, "lstmB_input": xb})[src.output_names[0]]
    np.testing.assert_allclose(got, numpy_reference(xa, xb), rtol=1e-4, atol=1e-5)
