-- tinytemp enqueue: one job per transaction through the SQL API.
SELECT tinytemp_enqueue('train', params => '{"model": "resnet50", "lr": 0.01, "epochs": 3}');
