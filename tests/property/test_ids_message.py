"""For any partner job id a direct event can carry, the direct job's hand-off body is the one `JobMessage` writes."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from codepipeline_worker.acknowledger.events import ThirdPartyJobEvent
from codepipeline_worker.shared.ids_message import IdsMessage
from codepipeline_worker.shared.messages import JobMessage

CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"


# Surrogates included: a lone one is refused by the event's validation, before any message is written.
@given(st.text(st.characters(exclude_categories=()), min_size=1, max_size=512))
def test_any_partner_job_id_an_event_accepts_gives_the_model_s_body(job_id: str) -> None:
    try:
        event = ThirdPartyJobEvent.model_validate({"jobId": job_id, "clientId": CLIENT_ID})
    except ValidationError:
        assume(False)
        raise
    model = JobMessage(job_id=event.job_id, job_type="thirdParty", client_id=event.client_id)

    body = IdsMessage(event.job_id, "thirdParty", event.client_id).to_body()

    assert body == model.to_body()
    assert JobMessage.from_body(body) == model
