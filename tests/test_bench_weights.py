"""bench/weights.py as a function (its last line is one JSON object with every figure), and the
RolloutBatch zero-copy claim: tensors travel as out-of-band buffers and come back as views of them.
Nothing here asserts a speed."""

import json
import pickle

import numpy as np
import pytest
import torch

from bench.weights import as_rollout_batch, lora_shapes, main, rollout_fields, tensors_of


def test_llada8b_rank128_adapter_is_about_067_gb_in_bf16():
    params = sum(a * b for a, b in lora_shapes(128).values())
    assert params == 32 * 128 * (4 * 2 * 4096 + 2 * (4096 + 12288) + (12288 + 4096))
    assert round(params * 2 / 1e9, 2) == 0.67


def test_rollout_batch_tensors_travel_out_of_band_and_come_back_as_views():
    batch = as_rollout_batch(rollout_fields(4, 8, 8, 3))
    buffers = []
    data = pickle.dumps(batch, protocol=5, buffer_callback=buffers.append)
    sent = tensors_of(batch)
    assert len(buffers) == len(sent)  # every tensor field out of band, none copied into the pickle
    assert len(data) < sum(t.numel() * t.element_size() for t in sent.values())
    raws = [b.raw() for b in buffers]
    back = pickle.loads(data, buffers=raws)
    addresses = {np.frombuffer(r, dtype=np.uint8).ctypes.data for r in raws}
    for name, tensor in tensors_of(back).items():
        assert isinstance(tensor, torch.Tensor) and torch.equal(tensor, sent[name])
        assert tensor.data_ptr() in addresses  # a view of the received buffer, not a copy
    assert back.state_at(3).shape == batch.state_at(3).shape


def test_plain_pickle_still_round_trips_a_rollout_batch():
    batch = as_rollout_batch(rollout_fields(2, 3, 4, 2))
    back = pickle.loads(pickle.dumps(batch))
    assert all(torch.equal(a, b) for a, b in zip(tensors_of(back).values(), tensors_of(batch).values()))


@pytest.mark.ray
def test_weights_bench_quick(capsys):
    result = main(["--quick"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(result))
    assert {"adapter", "rollout_batch", "rollout_batch_zero_copy", "llada8b_r128_params", "llada8b_r128_GB"} <= set(
        result)
    adapter = result["adapter"]
    assert {"params", "bytes", "publish_s", "publish_GBps", "pull"} <= set(adapter)
    assert set(adapter["pull"]) == {"1", "2", "4"}
    for n, pull in adapter["pull"].items():
        assert len(pull["pull_s_per_worker"]) == int(n)
        assert {"wall_s", "get_s_per_worker", "to_torch_s_per_worker", "aggregate_GBps"} <= set(pull)
    # measured in another process: a RolloutBatch's tensors live in the object store's shared memory
    # and both gets see the same memory; torch's own pickling (a plain dict of tensors) copies
    moved = result["rollout_batch"]
    assert moved["rollout_batch"]["zero_copy"] and moved["numpy_dict"]["zero_copy"]
    assert not moved["torch_dict"]["zero_copy"] and moved["torch_dict"]["fields_in_object_store"] == 0
    assert result["rollout_batch_zero_copy"] is True
