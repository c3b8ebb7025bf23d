import os

from hypothesis import HealthCheck, settings

# CI keeps property tests short (the machine has 2 cores); LOSSLAB_HYPOTHESIS=dev explores more.
settings.register_profile(
    "ci",
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("LOSSLAB_HYPOTHESIS", "ci"))
