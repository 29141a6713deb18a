"""The errors a user's input can cause. Each message is one paragraph naming the file (or entry
point), the field and the fix; the command line prints it and exits 2, the web app shows it as a
notice. They live together, below every loader, so any loader can raise them."""


class ConfigError(ValueError):
    """A bad config."""


class ExperimentError(ValueError):
    """A structural fault in an experiment file: names file, model and fix."""


class TaskError(RuntimeError):
    """User task code failed: says which entry point and why."""


class ModelNotRunnable(TaskError):
    """A model the task cannot run on this machine (e.g. a GPTQ checkpoint without its kernels)
    whose weights can still be read: says which model, why, and what still works."""
