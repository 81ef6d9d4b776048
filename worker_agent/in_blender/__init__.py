"""What runs inside Blender: the render runner and the progressive merge.

Standard library and ``bpy`` only: Blender runs these files by path
(``blender -b ... --python runner.py``) or a Python that has the ``bpy`` module
imports them, so they cannot rely on the rest of the agent being importable.
"""
