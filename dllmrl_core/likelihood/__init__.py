"""How a log-probability is obtained from a masked diffusion model.

Each estimator builds a `LogpQuery` (model input + which completion tokens to score) from a
rollout; `token_logp` runs the model on a query. Objectives never call the model themselves.
"""

from dllmrl_core.likelihood.branch import branch_query
from dllmrl_core.likelihood.one_step import mean_field_query
from dllmrl_core.likelihood.query import LogpQuery, TokenLogp, token_logp
from dllmrl_core.likelihood.stepwise import step_query

__all__ = ["LogpQuery", "TokenLogp", "branch_query", "mean_field_query", "step_query", "token_logp"]
