"""Your actions: one module per action, each with a work function (`make action NAME=my_action` writes one).

This folder ships with the work function (the template's CodeUri is src/), so WorkEntryPoint=actions.my_action:run
imports src/actions/my_action.py in Lambda as on your laptop.
"""
