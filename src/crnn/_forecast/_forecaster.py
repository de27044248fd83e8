"""RNNForecaster: a recurrent network around transforms, differences and covariates."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._estimators import RNNRegressor
from . import _transforms as tf
from ._pandas import is_pandas, wrap_forecast
from ._windows import _check_positive_int, _check_series, _check_series_list, _is_list_of_series

# The network used when regressor=None, chosen from bench/forecast.py (see bench/FORECAST.md);
# stated in full where RNNRegressor's own defaults may move (dropout, early stopping).
DEFAULT_REGRESSOR = {
    "cell": "gru",
    "hidden_layer_sizes": (32,),
    "learning_rate_init": 3e-3,
    "learning_rate": "adaptive",
    "max_iter": 100,
    "recurrent_dropout": 0.0,
    "early_stopping": False,
}


class RNNForecaster(BaseEstimator):
    """Recurrent forecaster: predicts the next steps of series from their last ``window`` steps.

    At fit, each series is transformed (log or Box-Cox, optional), differenced
    (at lag 1 and at the seasonal period, optional), standardized, and cut
    into windows; a clone of ``regressor`` learns to map the last ``window``
    steps, with any covariates, to the next ``horizon`` steps. At predict the
    same steps run on the given history and are undone on the forecasts, one
    step at a time, so that forecasts are in the series' units and forecasts
    past ``horizon`` (fed back recursively) keep a trend going.

    Parameters
    ----------
    regressor : RNNRegressor, default=None
        The network that maps windows to the next steps; cloned at fit. None
        means ``RNNRegressor(cell="gru", hidden_layer_sizes=(32,),
        learning_rate_init=3e-3, learning_rate="adaptive", max_iter=100,
        recurrent_dropout=0.0, early_stopping=False,
        random_state=random_state)``, the settings chosen in
        ``bench/FORECAST.md``. Its parameters are tuned as usual, e.g.
        ``set_params(regressor__max_iter=50)``.
    window : int, default=14
        How many past steps the network reads.
    horizon : int, default=1
        How many steps the network predicts at once (direct multi-step).
        ``horizon=1`` with ``steps > 1`` at predict is fully recursive.
    scale : bool, default=True
        Whether to standardize the modelled series and the covariates for the
        network. Turn it off only for data already on a scale of about unit
        variance.
    transform : {"auto", "log"}, float or None, default="auto"
        A variance-stabilizing transform of the series: ``"log"``, a Box-Cox
        transform ``(y**lmbda - 1) / lmbda`` with the given float ``lmbda``
        (0 is the log), or None. Both need a strictly positive series.
        ``"auto"`` takes the log when the spread of a positive series grows
        with its level (see Notes), else None.
    difference : {"auto", 0, 1}, default="auto"
        Whether to model first differences, ``y[t] - y[t - 1]`` (of the
        transformed, seasonally differenced series), so that a trend or a
        random walk carries on into the forecast. ``"auto"`` differences when
        KPSS and ADF tests agree on a unit root (see Notes).
    seasonal_period : int, default=None
        The length of the season in steps (7 for daily data with a weekly
        cycle, 12 for monthly data), at least 2. It enables seasonal
        differencing and sets the blocks of the ``"auto"`` log test.
    seasonal_difference : {"auto"} or bool, default=False
        Whether to model seasonal differences ``y[t] - y[t - seasonal_period]``
        (needs ``seasonal_period``). ``"auto"`` differences when the seasonal
        strength exceeds 0.64 (see Notes). Off by default: with a window of at
        least one season the network sees the season itself, and on every
        series of ``bench/FORECAST.md`` seasonal differences made its
        forecasts worse (they turn a fixed season plus noise into a
        non-invertible moving average, which no finite window can undo).
    interval_holdout : float, default=0.2
        The fraction of the training windows, the latest of each series, on
        which :meth:`predict_interval`'s errors are measured: a first network
        is fit on the windows before them, and its errors on them become
        :attr:`residuals_`; the final network is then fit on every window. 0
        takes the final network's errors on its own training windows instead
        (one fit instead of two; the intervals come out narrower than the
        errors, by the network's overfit).
    random_state : int, RandomState instance or None, default=None
        Seeds the default regressor (when ``regressor=None``) and, when
        :meth:`predict_interval` is given none, its simulated paths.

    Attributes
    ----------
    regressor_ : RNNRegressor
        The fitted network. It reads windows of shape ``(n_windows, window,
        n_series_ + n_covariates_)`` and predicts ``horizon * n_series_``
        standardized values of the modelled (transformed, differenced) series
        per window.
    transform_ : str, float or None
        The transform in use: ``"log"``, a Box-Cox lambda or None.
    difference_ : int
        The order of first differencing in use, 0 or 1.
    seasonal_difference_ : bool
        Whether seasonal differences are modelled.
    context_ : int
        How many past steps a forecast reads: ``window`` plus the steps that
        differencing consumes (``difference_ + seasonal_period *
        seasonal_difference_``).
    mean_ : ndarray of shape (n_series,)
        The mean of each column of the modelled series over the training data
        (zeros if ``scale=False``).
    scale_ : ndarray of shape (n_series,)
        Its standard deviation (1 for a constant column; ones if
        ``scale=False``).
    covariate_mean_, covariate_scale_ : ndarray of shape (n_covariates,)
        The same for the covariates.
    residuals_ : ndarray of shape (n_residuals, horizon * n_series)
        The network's errors on the held-out windows (see
        ``interval_holdout``), in its standardized units;
        :meth:`predict_interval` resamples them.
    n_series_ : int
        The number of columns of the series (1 for 1D series).
    n_covariates_ : int
        The number of covariate columns (0 when fit without ``X``).
    series_ndim_ : int
        1 if the model was fit on 1D series, 2 if on 2D series; it decides
        how :meth:`predict` reads its input and shapes its output.
    n_windows_ : int
        The number of training windows.

    See Also
    --------
    make_windows : Windows of a series, for a regressor of your own.
    RNNRegressor : The network; usable directly on windows for custom setups.

    Notes
    -----
    **The "auto" rules**, each decided on the training series at fit (for
    several series or columns, by majority), in this order (the seasonal one
    only when asked for):

    1. *Log*: the series is strictly positive, its block means (blocks of
       ``seasonal_period`` steps, else ``window``) span a factor of at least
       1.5, and the slope of log block standard deviation (around each
       block's linear trend) on log block mean is at least 0.5.
    2. *Seasonal difference*: the seasonal strength ``1 - var(remainder) /
       var(season + remainder)`` of a classical decomposition of the
       transformed series exceeds 0.64 (Wang, Smith and Hyndman, 2006; the
       rule of R's ``forecast::nsdiffs``).
    3. *First difference*: a unit root, by two tests that agree: the KPSS
       statistic of the result exceeds 0.463, its 5% critical value
       (Kwiatkowski et al., 1992; bandwidth of Hobijn et al., 1998), and the
       augmented Dickey-Fuller test does not reject a unit root at 5%
       (MacKinnon, 2010). KPSS alone often rejects persistent stationary
       series, whose mean reversion differencing would throw away.

    **Covariates** are features known in advance (calendar, planned events,
    other series measured ahead): ``X`` holds one row per step of the
    series. The network reads them ``horizon`` steps ahead: the window's
    step ``t`` holds ``y[t]`` and ``X[t + horizon]``, so the window's last
    ``horizon`` steps carry the covariates of the steps being forecast. A
    forecast therefore needs the covariates of the history (``X``) and of the
    forecast steps (``X_future``).

    Examples
    --------
    >>> import numpy as np
    >>> from crnn import RNNForecaster, RNNRegressor
    >>> t = np.arange(400)
    >>> series = 20 + 5 * np.sin(2 * np.pi * t / 7) + t / 100
    >>> regressor = RNNRegressor(cell="gru", max_iter=30, random_state=0)
    >>> forecaster = RNNForecaster(regressor, window=14).fit(series[:300])
    >>> forecaster.difference_
    1
    >>> forecaster.predict(series[:300], steps=7).shape
    (7,)
    """

    _parameter_constraints: dict = {
        "regressor": [HasMethods(["fit", "predict"]), None],
        "window": [Interval(numbers.Integral, 1, None, closed="left")],
        "horizon": [Interval(numbers.Integral, 1, None, closed="left")],
        "scale": ["boolean"],
        "transform": [
            StrOptions({"auto", "log"}),
            Interval(numbers.Real, None, None, closed="neither"),
            None,
        ],
        "difference": [StrOptions({"auto"}), Options(numbers.Integral, {0, 1})],
        "seasonal_period": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "seasonal_difference": [StrOptions({"auto"}), "boolean"],
        "interval_holdout": [Interval(numbers.Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        regressor=None,
        *,
        window=14,
        horizon=1,
        scale=True,
        transform="auto",
        difference="auto",
        seasonal_period=None,
        seasonal_difference=False,
        interval_holdout=0.2,
        random_state=None,
    ):
        self.regressor = regressor
        self.window = window
        self.horizon = horizon
        self.scale = scale
        self.transform = transform
        self.difference = difference
        self.seasonal_period = seasonal_period
        self.seasonal_difference = seasonal_difference
        self.interval_holdout = interval_holdout
        self.random_state = random_state

    # fit ----------------------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=False)  # the regressor validates itself at fit
    def fit(self, series, X=None):
        """Learn to forecast ``series`` from its past ``window`` steps (and covariates).

        Parameters
        ----------
        series : array-like of shape (n_steps,) or (n_steps, n_series), or list of such
            The training series, as in :func:`make_windows`: one series, one
            multivariate series (columns forecast jointly) or a list of
            independent series with the same number of columns (one model for
            all of them). A pandas Series or DataFrame works too. Each needs
            at least ``window + horizon`` steps, plus those differencing
            consumes.
        X : array-like of shape (n_steps, n_covariates), or list of such, default=None
            Covariates known in advance, one row per step of ``series`` (a
            list of arrays for a list of series); see Notes.

        Returns
        -------
        self : RNNForecaster
            The fitted forecaster.
        """
        if self.seasonal_difference is True and self.seasonal_period is None:
            raise ValueError("seasonal_difference=True needs a seasonal_period.")
        arrays = _check_series_list(series)
        several = _is_list_of_series(series)
        covariates = self._check_covariates(X, arrays, several, "X")
        series_ndim = arrays[0].ndim
        arrays = [a.reshape(len(a), -1) for a in arrays]
        transform, seasonal, difference = self._choose_transforms(arrays)
        self.transform_, self.difference_ = transform, int(difference)
        self.seasonal_difference_ = bool(seasonal)
        self.context_ = self.window + len(self._coefficients()) - 1

        for i, a in enumerate(arrays):
            if a.shape[0] < self.context_ + self.horizon:
                where = f"series[{i}]" if several else "series"
                raise ValueError(
                    f"{where} has {a.shape[0]} steps; a window of {self.window} steps, "
                    f"{self.context_ - self.window} more for differencing and a horizon of "
                    f"{self.horizon} need at least {self.context_ + self.horizon}."
                )
        modelled = [self._model_space(tf.forward_transform(a, transform)) for a in arrays]
        stacked = np.concatenate(modelled)
        self.mean_, self.scale_ = _moments(stacked, self.scale)
        self.n_covariates_ = 0 if covariates is None else covariates[0].shape[1]
        if covariates is None:
            self.covariate_mean_, self.covariate_scale_ = np.zeros(0), np.ones(0)
        else:
            self.covariate_mean_, self.covariate_scale_ = _moments(
                np.concatenate(covariates), self.scale
            )

        inputs, targets = [], []
        for i, w in enumerate(modelled):
            s = (w - self.mean_) / self.scale_
            features = s[: len(s) - self.horizon]
            if covariates is not None:
                shift = self.context_ - self.window + self.horizon
                features = np.hstack([features, self._scale_covariates(covariates[i][shift:])])
            inputs.append(_sliding(features, self.window))
            targets.append(_sliding(s[self.window :], self.horizon))
        targets = [y.reshape(len(y), -1) for y in targets]
        if self.interval_holdout:
            # The latest windows of each series, held out from a first fit: their errors are
            # those of forecasts, where in-sample errors would be too small.
            cut = [round(len(y) * (1 - self.interval_holdout)) for y in targets]
            if min(cut) < 1 or min(len(y) - c for y, c in zip(targets, cut)) < 1:
                raise ValueError(
                    f"interval_holdout={self.interval_holdout} leaves no windows to fit or to "
                    "hold out; use a longer series or interval_holdout=0."
                )
            early = self._fit_network(
                np.concatenate([x[:c] for x, c in zip(inputs, cut)]),
                np.concatenate([y[:c] for y, c in zip(targets, cut)]),
            )
            held_x = np.concatenate([x[c:] for x, c in zip(inputs, cut)])
            held_y = np.concatenate([y[c:] for y, c in zip(targets, cut)])
            self.residuals_ = held_y - early.predict(held_x).reshape(held_y.shape)
        inputs, targets = np.concatenate(inputs), np.concatenate(targets)
        self.regressor_ = self._fit_network(inputs, targets)
        if not self.interval_holdout:
            self.residuals_ = targets - self.regressor_.predict(inputs).reshape(targets.shape)
        self.n_series_ = self.mean_.shape[0]
        self.series_ndim_ = series_ndim
        self.n_windows_ = inputs.shape[0]
        return self

    def _choose_transforms(self, arrays):
        """The transform, seasonal difference and difference: as given, or by the auto rules."""
        columns = [a[:, j] for a in arrays for j in range(a.shape[1])]
        transform = self.transform
        if transform == "auto":
            block = self.seasonal_period or self.window
            transform = "log" if tf.wants_log(columns, block) else None
        if transform is not None:
            _check_positive(arrays, transform)
            columns = [tf.forward_transform(c, transform) for c in columns]
        seasonal = self.seasonal_difference
        if seasonal == "auto":
            seasonal = self.seasonal_period is not None and _majority(
                tf.seasonal_strength(c, self.seasonal_period) > tf.SEASONAL_STRENGTH_THRESHOLD
                for c in columns
            )
        difference = self.difference
        if difference == "auto":
            coef = tf.difference_coefficients(0, seasonal, self.seasonal_period)
            difference = _majority(
                tf.wants_difference(tf.apply_difference(c[:, None], coef)[:, 0]) for c in columns
            )
        return transform, seasonal, difference

    def _fit_network(self, inputs, targets):
        """A clone of the regressor fit on windows -> flat targets (n_windows, horizon * n)."""
        regressor = self.regressor
        if regressor is None:
            regressor = RNNRegressor(**DEFAULT_REGRESSOR, random_state=self.random_state)
        regressor = clone(regressor)
        if "pattern" in regressor.get_params():
            if regressor.pattern not in ("auto", "seq2vec"):
                raise ValueError(
                    "RNNForecaster maps each window to its next steps, pattern='seq2vec'; "
                    f"its regressor has pattern={regressor.pattern!r}."
                )
            # Stated, not inferred: a target as long as the window would read as seq2seq.
            regressor.set_params(pattern="seq2vec")
        return regressor.fit(inputs, targets[:, 0] if targets.shape[1] == 1 else targets)

    # predict ------------------------------------------------------------------------------

    def predict(self, series, steps=None, X=None, X_future=None):
        """Forecast the steps that follow the end of each given history.

        Parameters
        ----------
        series : array-like or list of array-like
            The history to continue; only its last ``context_`` steps are read
            (``window``, plus one step for a first difference and
            ``seasonal_period`` for a seasonal one). For a model fit on 1D
            series: one history of shape ``(n_steps,)`` (a pandas Series
            works), a batch of shape ``(n_histories, n_steps)`` or a list of
            1D histories of any lengths. For a model fit on 2D series:
            ``(n_steps, n_series)`` (or a DataFrame), ``(n_histories, n_steps,
            n_series)`` or a list of 2D histories.
        steps : int, default=None
            How many steps to forecast; None means ``horizon``. Steps past
            ``horizon`` are forecast recursively from earlier forecasts.
        X : array-like of shape (n_steps, n_covariates), default=None
            For a model fit with covariates: those of the history, one row per
            step of ``series`` (``(n_histories, n_steps, n_covariates)`` or a
            list for several histories).
        X_future : array-like of shape (n_future, n_covariates), default=None
            For a model fit with covariates: those of the forecast steps,
            ``n_future = ceil(steps / horizon) * horizon`` rows or more
            (``(n_histories, n_future, n_covariates)`` or a list for several).

        Returns
        -------
        forecast : ndarray of shape (steps,), (steps, n_series), \
                (n_histories, steps) or (n_histories, steps, n_series)
            For one history, its forecast shaped like ``steps`` steps of the
            series, in its units; for several, one such forecast per history,
            stacked. For one pandas history, a Series or DataFrame indexed by
            the steps after its index (dates for a dated index).
        """
        check_is_fitted(self)
        steps = self.horizon if steps is None else steps
        _check_positive_int(steps, "steps")
        histories, single = self._histories(series)
        covariates = self._future_covariates(histories, single, X, X_future, steps)
        paths = self._recurse(histories, covariates, steps)
        return self._shape_output(paths, single, series, steps)

    def predict_interval(
        self,
        series,
        steps=None,
        X=None,
        X_future=None,
        *,
        coverage=0.9,
        n_paths=1000,
        random_state=None,
    ):
        """Forecast intervals: the range that holds the future with probability ``coverage``.

        Simulates ``n_paths`` futures of each history through the recursion:
        at every step, an error of the network on held-out training windows
        (:attr:`residuals_`, one whole ``horizon`` block at a time, drawn with
        replacement) is added to its forecast, and the path is fed back,
        undifferenced and transformed back like a point forecast. The interval
        runs from the ``(1 - coverage) / 2`` quantile of the paths to the
        ``(1 + coverage) / 2`` one, so it widens with the steps ahead as the
        errors accumulate.

        Parameters
        ----------
        series : array-like or list of array-like
            The history to continue, as in :meth:`predict`.
        steps : int, default=None
            How many steps to forecast; None means ``horizon``.
        X : array-like of shape (n_steps, n_covariates), default=None
            The covariates of the history, as in :meth:`predict`.
        X_future : array-like of shape (n_future, n_covariates), default=None
            The covariates of the forecast steps, as in :meth:`predict`.
        coverage : float, default=0.9
            The probability the interval should hold, in (0, 1).
        n_paths : int, default=1000
            How many futures to simulate per history.
        random_state : int, RandomState instance or None, default=None
            Seeds the simulation; None uses the forecaster's ``random_state``.

        Returns
        -------
        lower, upper : ndarray, each shaped like :meth:`predict`'s forecast
            The ends of the interval at each step (pandas Series or
            DataFrames for one pandas history, as in :meth:`predict`).
        """
        check_is_fitted(self)
        if not (isinstance(coverage, numbers.Real) and 0 < coverage < 1):
            raise ValueError(f"coverage must be a float in (0, 1), got {coverage!r}.")
        _check_positive_int(n_paths, "n_paths")
        steps = self.horizon if steps is None else steps
        _check_positive_int(steps, "steps")
        histories, single = self._histories(series)
        covariates = self._future_covariates(histories, single, X, X_future, steps)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        repeat = np.repeat(histories, n_paths, axis=0)
        if covariates is not None:
            covariates = np.repeat(covariates, n_paths, axis=0)
        paths = self._recurse(repeat, covariates, steps, rng=rng)
        paths = paths.reshape(len(histories), n_paths, *paths.shape[1:])
        lower, upper = np.quantile(paths, [(1 - coverage) / 2, (1 + coverage) / 2], axis=1)
        return (
            self._shape_output(lower, single, series, steps),
            self._shape_output(upper, single, series, steps),
        )

    def score(self, series, X=None):
        """Negative mean absolute error of ``horizon``-step forecasts over ``series``.

        Every window of the series is a forecast origin: its next ``horizon``
        steps are forecast from its last ``context_`` steps and compared with
        the truth, in the series' units. Greater is better (0 is perfect), as
        scikit-learn's scorers want, so ``GridSearchCV(forecaster, {"window":
        [7, 14]}, cv=TimeSeriesSplit(3)).fit(series)`` tunes a forecaster on
        its own: each test fold is scored on its own windows.

        Parameters
        ----------
        series : array-like or list of array-like
            One series or a list of them, as in :meth:`fit`; each needs at
            least ``context_ + horizon`` steps.
        X : array-like or list of array-like, default=None
            Their covariates, as in :meth:`fit`, for a model fit with them.

        Returns
        -------
        score : float
            ``-mean(|forecast - truth|)`` over every origin, step and column.

        Raises
        ------
        ValueError
            If a series is too short to hold one forecast origin: use fewer
            cross-validation splits, a smaller window or a longer series.
        """
        check_is_fitted(self)
        arrays = (
            [_check_series(s, f"series[{i}]") for i, s in enumerate(series)]
            if (_is_list_of_series(series))
            else [_check_series(series)]
        )
        several = _is_list_of_series(series)
        for a in arrays:
            if a.shape[1:] != self._step_shape():
                raise ValueError(self._shape_message(a.shape))
        covariates = self._check_covariates(X, arrays, several, "X", fitted=True)
        errors = []
        for i, a in enumerate(arrays):
            a = a.reshape(len(a), -1)
            if a.shape[0] < self.context_ + self.horizon:
                raise ValueError(
                    f"score needs at least context_ + horizon = {self.context_ + self.horizon} "
                    f"steps to make one forecast, got a series of {a.shape[0]}: use fewer "
                    "cross-validation splits (or a test_size of at least that), a smaller "
                    "window or a longer series."
                )
            n_origins = a.shape[0] - self.context_ - self.horizon + 1
            histories = _sliding(a[: a.shape[0] - self.horizon], self.context_)
            truth = _sliding(a[self.context_ :], self.horizon)
            cov = None
            if covariates is not None:
                cov = _sliding(covariates[i], self.context_ + self.horizon)[:n_origins]
            self._check_positive_history(histories)
            errors.append(np.abs(self._recurse(histories, cov, self.horizon) - truth).ravel())
        return -float(np.mean(np.concatenate(errors)))

    # the recursion ------------------------------------------------------------------------

    def _coefficients(self):
        return tf.difference_coefficients(
            self.difference_, self.seasonal_difference_, self.seasonal_period
        )

    def _model_space(self, z):
        """The transformed series ``z`` (time on axis -2) differenced as the network models it."""
        return tf.apply_difference(z, self._coefficients())

    def _scale_covariates(self, covariates):
        return (covariates - self.covariate_mean_) / self.covariate_scale_

    def _recurse(self, histories, covariates, steps, rng=None):
        """Forecast ``steps`` steps after each history, in the series' units.

        ``histories`` is ``(n, context_, n_series_)``; ``covariates`` is None or
        ``(n, >= context_ + n_blocks * horizon, n_covariates_)``, aligned with
        the histories' first step. With ``rng``, a resampled training residual
        is added to every block (a simulated path). Returns ``(n, steps,
        n_series_)``.
        """
        coef = self._coefficients()
        z = tf.forward_transform(histories, self.transform_)
        shift = self.horizon - self.window
        for _ in range(-(-steps // self.horizon)):
            t = z.shape[1]  # the forecast origin, on the histories' time axis
            w = self._model_space(z[:, -self.context_ :])
            inputs = (w - self.mean_) / self.scale_
            if covariates is not None:
                ahead = self._scale_covariates(covariates[:, t + shift : t + self.horizon])
                inputs = np.concatenate([inputs, ahead], axis=2)
            forecast = self.regressor_.predict(inputs).reshape(len(z), -1)
            if rng is not None:
                forecast = (
                    forecast + self.residuals_[rng.randint(len(self.residuals_), size=len(z))]
                )
            w_next = forecast.reshape(len(z), self.horizon, self.n_series_)
            w_next = w_next * self.scale_ + self.mean_
            for j in range(self.horizon):
                step = tf.integrate_step(z, w_next[:, j], coef)
                z = np.concatenate([z, step[:, None]], axis=1)
        future = z[:, histories.shape[1] : histories.shape[1] + steps]
        return tf.inverse_transform(future, self.transform_)

    # input checks -------------------------------------------------------------------------

    def _step_shape(self):
        return () if self.series_ndim_ == 1 else (self.n_series_,)

    def _histories(self, series):
        """The last ``context_`` steps of each history as (n_histories, context_, n_series_)."""
        single = False
        if _is_list_of_series(series):
            histories = [_check_series(s, f"series[{i}]") for i, s in enumerate(series)]
        else:
            array = check_array(
                series, ensure_2d=False, allow_nd=True, dtype=np.float64, input_name="series"
            )
            single = array.ndim == self.series_ndim_
            if not (single or array.ndim == self.series_ndim_ + 1):
                raise ValueError(self._shape_message(array.shape))
            histories = [array] if single else list(array)
        for history in histories:
            if history.shape[1:] != self._step_shape():
                raise ValueError(self._shape_message(history.shape))
            if history.shape[0] < self.context_:
                extra = self.context_ - self.window
                more = f" plus {extra} for differencing" if extra else ""
                raise ValueError(
                    f"A history has {history.shape[0]} steps; this forecaster reads the last "
                    f"window={self.window} steps{more}, so it needs at least {self.context_}."
                )
        windows = np.stack([h[-self.context_ :] for h in histories])
        windows = windows.reshape(len(histories), self.context_, self.n_series_)
        self._check_positive_history(windows)
        return windows, single

    def _check_positive_history(self, histories):
        if self.transform_ is not None and np.any(histories <= 0):
            raise ValueError(
                f"This forecaster models the series through transform_={self.transform_!r}, "
                "which needs strictly positive values; the history has values <= 0."
            )

    def _check_covariates(self, X, arrays, several, name, fitted=False):
        """Covariates as a list of 2D arrays, one per series, each with that series' rows."""
        expected = getattr(self, "n_covariates_", None) if fitted else None
        if X is None:
            if expected:
                raise ValueError(
                    f"This forecaster was fit with {expected} covariates; pass {name} too."
                )
            return None
        if fitted and not expected:
            raise ValueError(f"This forecaster was fit without covariates; {name} must be None.")
        if several:
            if not (isinstance(X, (list, tuple)) and len(X) == len(arrays)):
                raise ValueError(
                    f"For a list of {len(arrays)} series, {name} must be a list of as many "
                    "covariate arrays."
                )
            items = list(X)
        else:
            items = [X]
        covariates = []
        for i, (x, a) in enumerate(zip(items, arrays)):
            x = check_array(x, ensure_2d=False, dtype=np.float64, input_name=name)
            x = x.reshape(len(x), -1) if x.ndim == 1 else x
            if x.shape[0] != a.shape[0]:
                raise ValueError(
                    f"{name} must have one row per step of its series: got {x.shape[0]} rows "
                    f"for {a.shape[0]} steps" + (f" (series {i})." if several else ".")
                )
            if expected is not None and x.shape[1] != expected:
                raise ValueError(
                    f"{name} has {x.shape[1]} columns; this forecaster was fit with {expected}."
                )
            covariates.append(x)
        if len({x.shape[1] for x in covariates}) > 1:
            raise ValueError(f"Every array of {name} must have the same number of columns.")
        return covariates

    def _future_covariates(self, histories, single, X, X_future, steps):
        """Covariates of the histories' last ``context_`` steps and of the forecast blocks."""
        if not self.n_covariates_:
            if X is not None or X_future is not None:
                raise ValueError(
                    "This forecaster was fit without covariates; X and X_future must be None."
                )
            return None
        if X is None or X_future is None:
            raise ValueError(
                f"This forecaster was fit with {self.n_covariates_} covariates: pass those of "
                "the history as X and those of the forecast steps as X_future."
            )
        n_future = -(-steps // self.horizon) * self.horizon
        parts = []
        for name, value, rows in (("X", X, self.context_), ("X_future", X_future, n_future)):
            if single:
                items = [value]
            elif isinstance(value, (list, tuple)):
                items = list(value)
            else:
                items = list(check_array(value, allow_nd=True, dtype=np.float64, input_name=name))
            if len(items) != len(histories):
                raise ValueError(f"{name} must hold one array per history ({len(histories)}).")
            arrays = []
            for x in items:
                x = check_array(x, ensure_2d=False, dtype=np.float64, input_name=name)
                x = x.reshape(len(x), -1) if x.ndim == 1 else x
                if x.shape[1] != self.n_covariates_:
                    raise ValueError(
                        f"{name} has {x.shape[1]} columns; this forecaster was fit with "
                        f"{self.n_covariates_}."
                    )
                if x.shape[0] < rows:
                    what = (
                        f"ceil(steps / horizon) * horizon = {rows} rows, one per forecast step"
                        if name == "X_future"
                        else f"one row per step of the history (at least {rows})"
                    )
                    raise ValueError(f"{name} has {x.shape[0]} rows; it needs {what}.")
                arrays.append(x[-rows:] if name == "X" else x[:rows])
            parts.append(np.stack(arrays))
        return np.concatenate(parts, axis=1)

    def _shape_output(self, paths, single, series, steps):
        if self.series_ndim_ == 1:
            paths = paths[..., 0]
        if not single:
            return paths
        if is_pandas(series):
            return wrap_forecast(paths[0], series, steps)
        return paths[0]

    def _shape_message(self, shape):
        if self.series_ndim_ == 1:
            expected = "(n_steps,) for one history or (n_histories, n_steps) for several"
        else:
            expected = (
                f"(n_steps, {self.n_series_}) for one history or (n_histories, n_steps, "
                f"{self.n_series_}) for several"
            )
        return (
            f"This forecaster was fit on {self.series_ndim_}D series, so it expects {expected}; "
            f"got shape {shape}."
        )


def _majority(votes):
    votes = list(votes)
    return 2 * sum(votes) > len(votes)


def _moments(stacked, scale):
    """Column means and standard deviations (1 where constant), or zeros and ones."""
    if not scale:
        return np.zeros(stacked.shape[1]), np.ones(stacked.shape[1])
    std = stacked.std(axis=0)
    return stacked.mean(axis=0), np.where(std > 0, std, 1.0)


def _sliding(array, length):
    """Every run of ``length`` consecutive rows: (n_steps - length + 1, length, n_columns)."""
    views = np.lib.stride_tricks.sliding_window_view(array, length, axis=0)
    return np.ascontiguousarray(np.moveaxis(views, -1, 1))


def _check_positive(arrays, transform):
    if any(np.any(a <= 0) for a in arrays):
        raise ValueError(
            f"transform={transform!r} needs a strictly positive series; the series has values "
            "<= 0. Use transform=None, or shift the series."
        )
