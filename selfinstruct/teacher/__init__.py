"""Teachers: every backend speaks the OpenAI protocol; backends only manage their server."""

from ..core.teacher_records import TeacherReply, TeacherRequest
from .openai_compat import OpenAITeacher
from .registry import BACKENDS, open_teacher

__all__ = ["BACKENDS", "OpenAITeacher", "TeacherReply", "TeacherRequest", "open_teacher"]
