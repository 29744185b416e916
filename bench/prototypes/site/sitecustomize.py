"""Prototype (PROTO_FIXES contains "submitoverlap"): overlap the submit path's independent AWS round trips.

Loaded by every Python process of the stack through PYTHONPATH (run_cxr_local.py sets it); acts only when asked.
- RateLimiter.hit runs in the background; the request joins it before it writes anything (put_job/create_job),
  so a throttled client still gets its 429 and nothing is written.
- S3ImageStore.put runs in the background, concurrently with create_job; SqsJobQueue.send joins it first, so no
  message ever names an image that is not stored yet.
Sequential round trips of a new image: 5 -> 3; of a cache hit: 3 -> 2. (A real fix would also abandon the job
when the put fails; here a failed put surfaces at the send.)
"""
import os

if "submitoverlap" in os.environ.get("PROTO_FIXES", ""):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from cxr_core import auth, aws_adapters, dynamo_store

    _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="overlap")
    _pending = threading.local()

    def _join(name):
        future = getattr(_pending, name, None)
        if future is not None:
            setattr(_pending, name, None)
            future.result()  # re-raises the throttle / the S3 error in the request's thread

    _hit, _put, _send = auth.RateLimiter.hit, aws_adapters.S3ImageStore.put, aws_adapters.SqsJobQueue.send
    _put_job, _create_job = dynamo_store.DynamoJobStore.put_job, dynamo_store.DynamoJobStore.create_job

    def hit(self, client_id):
        _pending.rate = _pool.submit(_hit, self, client_id)

    def put(self, key, data, content_type):
        _pending.image = _pool.submit(_put, self, key, data, content_type)

    def send(self, message):
        _join("image")
        return _send(self, message)

    def put_job(self, job):
        _join("rate")
        return _put_job(self, job)

    def create_job(self, job, *args, **kwargs):
        _join("rate")
        return _create_job(self, job, *args, **kwargs)

    auth.RateLimiter.hit = hit
    aws_adapters.S3ImageStore.put = put
    aws_adapters.SqsJobQueue.send = send
    dynamo_store.DynamoJobStore.put_job = put_job
    dynamo_store.DynamoJobStore.create_job = create_job
