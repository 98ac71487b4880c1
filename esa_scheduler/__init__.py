"""esa-scheduler: keep Alibaba Cloud ESA log-delivery tasks online or offline on schedule."""

__version__ = "0.1.0"
