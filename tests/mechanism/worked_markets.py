"""Hand-worked markets shared by the mechanism tests (arithmetic in the docstrings)."""

import math

import numpy as np

from mechanism import Market


def three_clients() -> Market:
    r"""The worked 3-client example (also used in test_payments.py).

    Client 0: trader, N = 100, K = 400, c = 1.   g_0(x) = 2 - 20/sqrt(100 + x)
    Client 1: seller, N = 300, K = 0,   c = 0.25
    Client 2: buyer,  N = 100, K = 400, c = inf. g_2 = g_0
    lam = 1, d_01 = 0.05, d_12 = 0.1, d_02 = 0 (symmetric).

    Weights w_ij = c_j + lam N_j/N_i d_ij:
      w_01 = 0.25 + 3 * 0.05 = 0.40,  w_02 = inf (buyer)
      w_10 = 1 + (1/3)*0.05,  w_12 = inf;  client 1 has K = 0: imports nothing
      w_20 = 1 + 0 = 1.00,            w_21 = 0.25 + 3 * 0.1 = 0.55
    Row 0: candidate 1 alone is worth g_0(300) = 2 - 20/20 = 1 > 0.40: import it;
      candidate 2 has threshold 0: stop.  a_0 = {1}.
    Row 2: threshold of 1 (T with 20/sqrt(T-200) - 20/sqrt(T+100) = 0.55, T ~ 376)
      exceeds that of 0 (20/sqrt(T) - 20/sqrt(T+100) = 1 has T < 100: no root
      >= N_0, threshold 0): take 1 (0 + 300 < 376); then 0 fails: stop.  a_2 = {1}.
    """
    d = [[0, 0.05, 0], [0.05, 0, 0.1], [0, 0.1, 0]]
    return Market(N=[100, 300, 100], c=[1.0, 0.25, math.inf], K=[400, 0, 400], d=d, lam=1.0)


def skip_differs_market() -> Market:
    """Row 0 shows where "paper" stops but "skip" goes on (lam = 0).

    g_0(x) = 2 - 20/sqrt(100 + x). Candidates: 1 (N = 300, c = 0: threshold inf),
    2 (N = 2000, c = 0.8), 3 (N = 10, c = 0.01).
    Take 1 (n = 300). Candidate 2: g_0(2300) - g_0(300) = 1 - 20/sqrt(2400) = 0.592 < 0.8:
    fails, though alone it is worth g_0(2000) = 1.564 > 0.8, so its threshold (~2080)
    beats candidate 3's (~364). "paper" stops here: a_0 = {1}.
    "skip" tries 3: g_0(310) - g_0(300) = 1 - 20/sqrt(410) = 0.01227 > 0.01: a_0 = {1, 3},
    and phi_0 is lower by 0.01227 - 0.01 = 0.00227: "paper" is not locally optimal (eq. (9)).
    """
    return Market(N=[100, 300, 2000, 10], c=[1.0, 0.0, 0.8, 0.01], K=[400, 0, 0, 0],
                  d=np.zeros((4, 4)), lam=0.0)
