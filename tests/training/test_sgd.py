"""training/sgd.py: the mini-batches of the loop and of the batched kernel are one plan."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from training.client import ClientContext
from training.sgd import BatchPlan, epoch_orders, sgd_loop


def _ctx(client: int, epochs: int = 2, batch_size: int = 3) -> ClientContext:
    return ClientContext(model=torch.nn.Linear(1, 1), shared=torch.ones(2, dtype=torch.bool),
                         client=client, round=1, seed=0, epochs=epochs,
                         batch_size=batch_size, lr=0.1)


@given(st.lists(st.integers(0, 9), min_size=1, max_size=4), st.integers(1, 4))
def test_every_sample_once_per_epoch_in_the_orders_batches(n, batch_size):
    ctxs = [_ctx(i, batch_size=batch_size) for i in range(len(n))]
    plan = BatchPlan.for_clients(n, ctxs)
    offsets = [sum(n[:c]) for c in range(len(n))]
    for c, (k, ctx) in enumerate(zip(n, ctxs, strict=True)):
        assert int(plan.steps[c]) == -(-k // batch_size)
        for e, order in enumerate(epoch_orders(ctx, k)):
            got = [plan.batch(e, c, s) - offsets[c] for s in range(int(plan.steps[c]))]
            want = [b for b in order.split(batch_size) if len(b)]  # torch splits [] into [[]]
            assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_the_loop_steps_the_clients_that_have_a_batch_most_steps_first():
    plan, order = BatchPlan.for_clients([2, 7, 0, 4], [_ctx(i) for i in range(4)]).sorted()
    assert order.tolist() == [1, 3, 0, 2] and plan.steps.tolist() == [3, 2, 1, 0]
    calls = []
    sgd_loop(plan, lambda e, s, k: calls.append((e, s, k)))
    assert calls == [(e, s, k) for e in range(2) for s, k in enumerate([3, 2, 1])]
    empty = BatchPlan.for_clients([0], [_ctx(0)])
    sgd_loop(empty, lambda e, s, k: calls.append("a client with no data steps"))
    assert "a client with no data steps" not in calls
