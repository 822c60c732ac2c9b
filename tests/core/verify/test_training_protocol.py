"""Training completions are judged correct with the parsers that read the training format."""

import threading
from multiprocessing import Pipe

from dllmrl_core.contract.verdict import TRAINING_PROTOCOL, VerifyItem
from dllmrl_core.tasks import TaskConfig, get_task
from dllmrl_core.tasks.countdown import CountdownExample
from dllmrl_core.verify.verifier import serve, verify

# the training format, full d1 reward; d1's eval parser reads the whole text (no box) and fails
ANSWER = "<reasoning>\nadd 9 and 7 = 16, minus 3 = 13\n</reasoning>\n<answer>\n9+7-3\n</answer>"


def test_a_correct_training_answer_counts_as_correct_whatever_the_eval_protocol():
    task, example = get_task("countdown"), CountdownExample((3, 7, 9), 13, "9+7-3")
    text = ANSWER
    assert task.reward(text, example, "d1").total == 1.0
    assert verify(task, "d1", TRAINING_PROTOCOL, text, example).correct
    # d1's evaluation parser wants \boxed{}: the training answer is not read, hence TRAINING_PROTOCOL
    assert not verify(task, "d1", "d1", text, example).correct


def test_the_verifier_process_honours_each_items_protocol():
    task, example = get_task("countdown"), CountdownExample((3, 7, 9), 13, "9+7-3")
    text = ANSWER
    ours, theirs = Pipe()
    config = TaskConfig.parse({"name": "countdown", "reward_set": "d1", "eval_protocol": "d1"})
    worker = threading.Thread(target=serve, args=(theirs, config))
    worker.start()
    ours.send((0, VerifyItem(text, example)))
    ours.send((1, VerifyItem(text, example, TRAINING_PROTOCOL)))
    got = dict(ours.recv() for _ in range(2))
    ours.send(None)
    worker.join(timeout=10)
    assert not got[0].correct and got[1].correct
