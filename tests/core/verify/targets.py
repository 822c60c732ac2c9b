"""Verifier loops for VerifierPool tests. Kept light (no torch): a verifier process imports this module
to find its target, and a replacement process does so again."""

import os
import time


def stalling_serve(conn, config):
    """A verifier that hangs on "hang" and dies on "die"; anything else is verified normally (`config`: the
    task's TaskConfig, as the real loop gets it)."""
    from dllmrl_core.verify.verifier import verify

    while (job := conn.recv()) is not None:
        index, item = job
        if item.text == "hang":
            time.sleep(3600)
        if item.text == "die":
            os._exit(1)
        conn.send((index, verify(config.task, config.reward_set, item.protocol or config.eval_protocol, item.text,
                                 item.example)))


def unguarded_serve(conn, config):
    """The real verifier loop with the pre-parse guard switched off in this process."""
    from dllmrl_core.tasks import agrpo, equivalence
    from dllmrl_core.verify.verifier import serve

    equivalence.too_risky = agrpo.too_risky = lambda expr: False
    serve(conn, config)
