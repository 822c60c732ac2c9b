"""DDP over the adapter only: two gloo ranks on CPU. Wrapping broadcasts rank 0's trainable
parameters and leaves every frozen one alone (no 8 B-parameter broadcast at start-up), and the
trainable gradients are still averaged over the ranks."""

import datetime
import socket

import torch
import torch.multiprocessing as mp
from torch import nn

from dllmrl_core.training.ddp import wrap_ddp


def rank_main(rank: int, world: int, port: int, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=60))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))  # [0]: the frozen base, [1]: the adapter
    model[0].requires_grad_(False)
    if rank == 1:  # ranks that disagree before wrapping
        with torch.no_grad():
            model[0].weight.add_(1.0)
            model[1].weight.add_(1.0)
    ddp = wrap_ddp(model, torch.device("cpu"))
    wrapped = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ddp(torch.full((3, 4), float(rank + 1))).sum().backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    torch.save({"wrapped": wrapped, "grads": grads}, f"{out}/rank{rank}.pt")
    torch.distributed.barrier()  # neither rank tears gloo down while the other still uses it (a SIGABRT, seen twice)
    torch.distributed.destroy_process_group()


def test_wrapping_syncs_the_adapter_and_leaves_frozen_weights_alone(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(rank_main, args=(2, port, str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    w0, w1 = r0["wrapped"], r1["wrapped"]
    assert torch.equal(w1["0.weight"], w0["0.weight"] + 1.0)  # frozen: not broadcast from rank 0
    assert torch.equal(w1["1.weight"], w0["1.weight"]) and torch.equal(w1["1.bias"], w0["1.bias"])  # trainable: it is
    assert r0["grads"].keys() == {"1.weight", "1.bias"}
    assert all(torch.equal(r0["grads"][k], r1["grads"][k]) for k in r0["grads"])  # all-reduced
