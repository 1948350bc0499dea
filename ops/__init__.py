"""Operational endpoints: what load balancers and monitoring read."""
