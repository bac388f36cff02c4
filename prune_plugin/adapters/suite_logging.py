"""Send the ``prune_plugin`` logger's records to a suite's own logger.

PaddleSeg and PaddleClas print through loggers of their own (rank 0 only, their format); the
plugin's lines go there too, prefixed ``[prune_plugin]``, instead of a second handler of ours.
"""
import logging

logger = logging.getLogger('prune_plugin')


class SuiteLogHandler(logging.Handler):
    """Forwards records to ``suite_logger()`` (looked up at each record: suites reconfigure it).

    Args:
        suite_logger: A function returning the suite's logger object (with ``info``/``warning``).
    """

    def __init__(self, suite_logger):
        super().__init__()
        self.suite_logger = suite_logger

    def emit(self, record):
        target = self.suite_logger()
        message = f"[prune_plugin] {record.getMessage()}"
        if record.levelno >= logging.WARNING:
            target.warning(message)
        else:
            target.info(message)


def log_through(suite_logger, replace_handlers=False, force_info=False):
    """Route the ``prune_plugin`` logger to ``suite_logger()``, once per process.

    Records stop there (no propagation): the root logger, where paddle installs a handler, would
    print them a second time on every rank.

    Args:
        suite_logger: A function returning the suite's logger.
        replace_handlers: Remove the plugin logger's other handlers first.
        force_info: Set the level to INFO even when one was set before.
    """
    if not any(isinstance(h, SuiteLogHandler) for h in logger.handlers):
        if replace_handlers:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
        logger.addHandler(SuiteLogHandler(suite_logger))
    logger.propagate = False
    if force_info or logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
