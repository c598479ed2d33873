-- Plain-SQL queue enqueue: one INSERT per transaction.
INSERT INTO plain_jobs (kind, payload)
VALUES ('train', '{"model": "resnet50", "lr": 0.01, "epochs": 3}') RETURNING id;
