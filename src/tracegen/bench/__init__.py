"""Evidence: the closed-loop benchmark (and its protocol tables)."""
