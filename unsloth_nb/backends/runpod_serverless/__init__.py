"""``placement: serverless``: a training job as one request on a RunPod serverless endpoint made for it (issue 15)."""
