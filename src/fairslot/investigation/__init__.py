"""Investigation of a year of records: readers, rules, link graph, dense blocks, lockstep,
anomaly scores, rings and roles, the evidence report, synthetic records and their scoring."""
