"""Transforms that make a series easier to model, and the tests that decide them.

A forecaster models ``w = D(f(y))``: ``f`` is a log or Box-Cox transform (or
none) and ``D`` a product of differences, ``(1 - B)^d (1 - B^m)^D`` with the
backshift ``B``. Both are undone on forecasts, one step at a time, so that
forecasts fed back into the recursion are always in the series' own terms.

The ``"auto"`` rules, each applied to the training series:

- **Log** (:func:`wants_log`): the series is strictly positive, its level
  moves (block means span a factor of at least 1.5) and its spread grows with
  its level: the slope of log block standard deviation (around each block's
  linear trend) on log block mean is at least 0.5 (1 is a spread
  proportional to the level, the case the log stabilizes; 0 a constant
  spread). The blocks are seasons of ``seasonal_period`` steps, or of
  ``window`` steps without one.
- **Seasonal difference** (:func:`seasonal_strength`): the seasonal strength
  of Wang, Smith and Hyndman (2006), ``1 - var(remainder) / var(season +
  remainder)`` of a classical decomposition, exceeds 0.64, the threshold of
  R's ``forecast::nsdiffs``.
- **First difference** (:func:`wants_difference`): two tests agree that the
  series has a unit root. The KPSS test rejects level stationarity at the 5%
  level (statistic above 0.463, Kwiatkowski et al. 1992, table 1; automatic
  bandwidth of Hobijn, Franses and Ooms 1998), as R's ``forecast::ndiffs``
  decides ``d``, *and* the augmented Dickey-Fuller test does not reject a
  unit root at the 5% level (MacKinnon's 2010 critical value, about -2.86).
  KPSS alone rejects persistent stationary series (an AR(1) with coefficient
  0.9) about half the time, and differencing those throws away their mean
  reversion. The price: a random walk of 400 steps goes undetected about one
  time in ten, of 1000 steps one in fifty.
"""

import numpy as np

# Kwiatkowski, Phillips, Schmidt and Shin (1992), table 1: level stationarity, 5% level.
KPSS_CRITICAL_5PCT = 0.463
# Wang, Smith and Hyndman (2006); the threshold of forecast::nsdiffs.
SEASONAL_STRENGTH_THRESHOLD = 0.64
LOG_SLOPE_THRESHOLD = 0.5
LOG_LEVEL_RATIO = 1.5


def kpss_statistic(x):
    """The KPSS statistic of level stationarity of one series, with an automatic bandwidth.

    Parameters
    ----------
    x : ndarray of shape (n_steps,)
        The series, at least 3 steps.

    Returns
    -------
    statistic : float
        Large values reject stationarity: above 0.463 at the 5% level.

    Notes
    -----
    ``eta = sum(S_t^2) / (n^2 s^2)`` with ``S_t`` the partial sums of the
    demeaned series and ``s^2`` its long-run variance, a Bartlett-weighted sum
    of autocovariances up to the lag chosen by Hobijn, Franses and Ooms (1998),
    the same as ``statsmodels.tsa.stattools.kpss(x, nlags="auto")``.
    """
    e = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = e.shape[0]

    def autocov(lags):
        return np.array([e[k:] @ e[: n - k] for k in range(lags + 1)]) / n

    if not np.any(e):
        return 0.0  # a constant series is stationary
    # Hobijn et al.: a pilot estimate of the spectral shape from n^(2/9) lags.
    pilot = int(n ** (2 / 9))
    gamma = autocov(pilot)
    s0 = gamma[0] + 2 * gamma[1:].sum()
    s1 = 2 * (np.arange(1, pilot + 1) * gamma[1:]).sum()
    lags = min(int(1.1447 * ((s1 / s0) ** 2) ** (1 / 3) * n ** (1 / 3)), n - 1)
    gamma = autocov(lags)
    weights = 1 - np.arange(1, lags + 1) / (lags + 1)
    long_run = gamma[0] + 2 * (weights * gamma[1:]).sum()
    return float(np.sum(np.cumsum(e) ** 2) / (n**2 * long_run))


def adf_statistic(x, lags=None):
    """The augmented Dickey-Fuller t-statistic of a unit root in one series, with a constant.

    The t-statistic of ``gamma`` in ``dx_t = a + gamma x_{t-1} + sum_i b_i dx_{t-i} + e_t``
    by least squares, with ``lags`` lagged differences (None: Schwert's rule,
    ``int(12 (n / 100)^(1/4))``, at most a third of the series); as
    ``statsmodels.tsa.stattools.adfuller(x, maxlag=lags, autolag=None)``.
    Very negative values reject the unit root: below :func:`adf_critical_5pct`.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if lags is None:
        lags = min(int(12 * (n / 100) ** 0.25), (n - 2) // 3)
    dx = np.diff(x)
    rows = len(dx) - lags
    design = np.column_stack(
        [x[lags : lags + rows], np.ones(rows)]
        + [dx[lags - i : lags - i + rows] for i in range(1, lags + 1)]
    )
    target = dx[lags:]
    beta, _, rank, _ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ beta
    dof = rows - design.shape[1]
    if rank < design.shape[1] or dof < 1 or not np.any(resid):
        return 0.0  # degenerate (constant, or perfectly predictable): no evidence either way
    sigma2 = resid @ resid / dof
    cov = sigma2 * np.linalg.pinv(design.T @ design)
    return float(beta[0] / np.sqrt(cov[0, 0]))


def adf_critical_5pct(n):
    """MacKinnon's (2010) 5% critical value of the ADF test with a constant, for n steps."""
    return -2.86154 - 2.8903 / n - 4.234 / n**2 - 40.040 / n**3


def wants_difference(x):
    """The "auto" first-difference rule of one series: KPSS rejects and ADF does not."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 10:
        return False
    return kpss_statistic(x) > KPSS_CRITICAL_5PCT and adf_statistic(x) > adf_critical_5pct(
        x.shape[0]
    )


def seasonal_strength(x, period):
    """The strength of the season of one series, from a classical decomposition, in [0, 1].

    The trend is a centred moving average over one period (a 2 x m average for
    even periods), the season the mean detrended value of each phase, the
    remainder what is left; the strength is ``max(0, 1 - var(remainder) /
    var(season + remainder))``. Series shorter than two periods have strength 0.
    """
    x = np.asarray(x, dtype=np.float64)
    if period < 2 or x.shape[0] < 2 * period + 1:
        return 0.0
    kernel = np.ones(period + 1 - period % 2)
    if period % 2 == 0:
        kernel[[0, -1]] = 0.5
    kernel /= period
    trend = np.convolve(x, kernel, mode="valid")
    offset = (len(kernel) - 1) // 2
    detrended = x[offset : offset + len(trend)] - trend
    phase = (np.arange(len(detrended)) + offset) % period
    season = np.bincount(phase, detrended) / np.bincount(phase)
    remainder = detrended - season[phase]
    total = np.var(detrended)
    return 0.0 if total == 0 else float(max(0.0, 1 - np.var(remainder) / total))


def log_slope(x, block):
    """How the spread of a positive series grows with its level, over blocks of ``block`` steps.

    Returns the least-squares slope of log block standard deviation (around
    the block's linear trend) on log block mean, and the ratio of the largest
    block mean to the smallest; ``(0.0, 1.0)`` when there are fewer than 4
    blocks or a block is constant.
    """
    x = np.asarray(x, dtype=np.float64)
    n_blocks = x.shape[0] // block
    if n_blocks < 4 or block < 2:
        return 0.0, 1.0
    blocks = x[-n_blocks * block :].reshape(n_blocks, block)
    # The spread around each block's own linear trend: a trend alone is no growing spread.
    t = np.arange(block) - (block - 1) / 2
    slopes = blocks @ t / (t @ t)
    means = blocks.mean(axis=1)
    stds = (blocks - means[:, None] - slopes[:, None] * t).std(axis=1)
    if np.any(stds <= 0) or np.any(means <= 0):
        return 0.0, 1.0
    x, y = np.log(means) - np.log(means).mean(), np.log(stds)
    slope = x @ y / (x @ x) if x @ x > 0 else 0.0
    return float(slope), float(means.max() / means.min())


def wants_log(arrays, block):
    """The "auto" log rule over training series (a list of 1D arrays); see the module notes."""
    if any(np.any(a <= 0) for a in arrays):
        return False
    votes = []
    for a in arrays:
        slope, ratio = log_slope(a, block)
        votes.append(slope >= LOG_SLOPE_THRESHOLD and ratio >= LOG_LEVEL_RATIO)
    return 2 * sum(votes) > len(votes)


def forward_transform(y, transform):
    """``f(y)``: identity (None), ``log`` or Box-Cox with the given lambda (a float)."""
    if transform is None:
        return y
    if transform == "log" or transform == 0:
        return np.log(y)
    return (y**transform - 1) / transform


def inverse_transform(z, transform):
    """The inverse of :func:`forward_transform`."""
    if transform is None:
        return z
    if transform == "log" or transform == 0:
        return np.exp(z)
    # Past the edge of Box-Cox's range the forecast is 0, the smallest value it can mean.
    return np.maximum(transform * z + 1, 0) ** (1 / transform)


def difference_coefficients(difference, seasonal_difference, period):
    """The coefficients ``c`` of ``(1 - B)^d (1 - B^m)^D``: ``w_t = sum_k c[k] z_{t-k}``."""
    coef = np.ones(1)
    if difference:
        coef = np.convolve(coef, [1.0, -1.0])
    if seasonal_difference:
        coef = np.convolve(coef, np.r_[1.0, np.zeros(period - 1), -1.0])
    return coef


def apply_difference(z, coef):
    """Difference ``z`` along axis -2 (time): ``len(coef) - 1`` fewer steps."""
    lag = len(coef) - 1
    n = z.shape[-2]
    out = np.zeros(z.shape[:-2] + (n - lag, z.shape[-1]))
    for k, c in enumerate(coef):
        if c:
            out += c * z[..., lag - k : n - k, :]
    return out


def integrate_step(z, w, coef):
    """The next value ``z_t`` from its difference ``w_t`` and the past ``z`` (time on axis -2).

    ``w_t = sum_k c[k] z_{t-k}`` with ``c[0] = 1``, so ``z_t = w_t - sum_{k>=1} c[k] z_{t-k}``.
    """
    step = w.copy()
    for k, c in enumerate(coef[1:], start=1):
        if c:
            step -= c * z[..., -k, :]
    return step
