"""What runs inside Blender: the render runner and the progressive merge.

Standard library and ``bpy`` only: Blender runs these files by path
(``blender -b ... --python runner.py``) or a Python that has the ``bpy`` module
imports them, so they cannot rely on the rest of the agent being importable.
They import each other only as ``from worker_agent.in_blender.X import ...``:
run by path, runner.py and merge.py first register this folder under that
package name (the stanza at their top), so the same line works both ways.
"""
