"""A direct job's hand-off message, written without the message model: byte for byte the body `JobMessage` writes
for the same ids, which the work side parses as any message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from codepipeline_worker.shared.ids_message import IdsMessage
from codepipeline_worker.shared.messages import JobMessage

if TYPE_CHECKING:
    from codepipeline_worker.shared.models import JobType

CUSTOM_JOB = "11111111-abcd-4bcd-8bcd-0123456789ab"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"


@pytest.mark.parametrize(
    ("job_id", "job_type", "client_id"),
    [
        (CUSTOM_JOB, "custom", None),
        (CUSTOM_JOB, "custom", CLIENT_ID),
        ("partner-job-0001", "thirdParty", CLIENT_ID),
        # What JSON must escape, and what it must not: quotes, backslashes, control characters, non-ASCII, the
        # line and paragraph separators, an astral character, DEL.
        ('a "quoted" \\ job\n\t\r\b\f\x00\x1f', "thirdParty", CLIENT_ID),
        ("jöb-\u00e9\u2028\u2029-\U0001f680-\x7f-</script>", "thirdParty", CLIENT_ID),
        ("x" * 512, "thirdParty", CLIENT_ID),
    ],
)
def test_the_body_is_the_one_the_message_model_writes_and_the_work_side_reads_it(
    job_id: str, job_type: JobType, client_id: str | None
) -> None:
    model = JobMessage(job_id=job_id, job_type=job_type, client_id=client_id)

    message = IdsMessage(job_id, job_type, client_id)

    assert message.to_body() == model.to_body()
    assert message.dedup_id == model.dedup_id
    assert message.has_context is model.has_context is False
    assert JobMessage.from_body(message.to_body()) == model


def test_a_partner_job_s_message_needs_its_client_id_as_the_model_s_does() -> None:
    with pytest.raises(ValidationError, match="needs its clientId"):
        JobMessage(job_id="partner-job-0001", job_type="thirdParty")

    with pytest.raises(ValueError, match="needs its clientId"):
        IdsMessage("partner-job-0001", "thirdParty")
