"""Dagster definitions. Partitioned asset checks are a preview feature in Dagster 1.13 (the
version is pinned exactly), so its warning is silenced before any definition is built."""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)
