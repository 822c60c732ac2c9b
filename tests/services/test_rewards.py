"""Reward actors (their verifier processes are VerifierPool's: tests/core/verify/test_pool.py)."""

from bench.hostile import EXAMPLES
from bench.hostile_corpus import corpus
from dllmrl_core.contract.verdict import VerifyItem
from services.reward_actors import gather

N = 10_000


def test_gather_undoes_the_interleaved_split():
    items = list(range(7))
    parts = [items[k::3] for k in range(3)]
    assert gather(parts) == items


def test_the_reward_actors_on_hostile_completions(ray_session, tmp_path):
    from dllmrl_core.tasks import TaskConfig
    from dllmrl_core.verify.config import VerifyConfig
    from services.reward_actors import gather, start_reward_actors, verify_items
    from services.settings import RewardConfig

    canary = tmp_path / "canary"
    for task in ("math500", "countdown"):
        items = [VerifyItem(t, EXAMPLES[task]) for t in corpus(task, N, seed=0, canary=str(canary))[::500]]
        actors = start_reward_actors(RewardConfig(num_actors=1, num_cpus_per_actor=0.1),
                                     TaskConfig.parse({"name": task, "reward_set": "fixed", "eval_protocol": "fixed"}),
                                     VerifyConfig(timeout_s=5.0))
        verdicts = gather(ray_session.get(verify_items(actors, ray_session.put(items))))
        assert len(verdicts) == len(items) and not any(v.timed_out or v.crashed for v in verdicts)
        for actor in actors:
            ray_session.kill(actor)
    assert not canary.exists()
