"""The live answer pipeline: what the candidate's audio passes through after `media/` and
before `rooms/` stores it: the answers of a node (`answers`), the speech jobs' work (`work`),
the recording journal (`journal`), retention, the interview-moved operation (`moves`) and the
factories of the engines and scorers (`factories`)."""
