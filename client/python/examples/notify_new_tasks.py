#!/usr/bin/env python3
"""Print each new task routed to this worker, as it arrives; with --accept, accept it.

Runs until Ctrl-C, across daemon restarts: when events were lost meanwhile, it says so and
prints the tasks the daemon holds now. Usage: notify_new_tasks.py [--socket PATH] [--accept]
"""
import argparse

import taskrouter

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--socket", help="daemon socket (default: as taskrouterctl finds it)")
ap.add_argument("--accept", action="store_true", help="accept each new reservation")
args = ap.parse_args()

with taskrouter.Client(args.socket) as client:
    sub = client.subscribe(events=["reservationCreated"], give_up_after=None)
    for ev in sub:
        if ev.is_gap:
            print(f"-- missed events ({ev.reason}); the tasks now:")
            for task in ev.tasks:
                print(f"   {task['sid']}  {task['status']}  {task['attributes']}")
            continue
        task = ev.task
        print(f"new task {ev.task_sid} in {task['queueName']} on {task['taskChannelUniqueName']}:"
              f" {task['attributes']}", flush=True)
        if args.accept:
            try:
                client.reservation_accept(ev.reservation_sid)
            except taskrouter.RpcError as e:
                print(f"   could not accept it: {e}")
