"""Execution: predicted traces -> end-effector actions, in closed loop."""
