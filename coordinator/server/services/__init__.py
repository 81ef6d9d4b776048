"""The farm's services, one module each, over one shared `FarmContext`.

    context     store, file store, hub, config; row lookups, status changes
                through the transition tables, a job's status from its tasks
    workers     register, authenticate, list; disable, enable, remove, sign-off
    jobs        submit, read, list; cancel, pause, resume, requeue, priority,
                clear the blocklist, delete
    regenerate  compile a job's tasks again, keeping finished frames
    tasks       the worker protocol (claim, report, complete, fail) and a
                person's task actions
    retries     a task taken back from its worker: retried or failed
    deliveries  outputs: upload, delivery into the output folder, retries
    sweeps      expired leases and silent workers

Services take typed arguments (the API parses requests into them) and return
JSON written by `coordinator.server.views`. `coordinator.server.farm.Farm`
holds one of each.
"""
