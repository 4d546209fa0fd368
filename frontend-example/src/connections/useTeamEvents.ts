import { useEffect, useRef, useState } from "react";
import { useClient } from "urql";
import { errorMessage } from "../errors";
import {
  ConnectionEventsDocument,
  VerificationEventsDocument,
  type VerificationEventsSubscription,
} from "../gql/graphql";

export type Check = VerificationEventsSubscription["verificationEvents"];

/**
 * Follows the team's live events: every connection event and every finished check calls
 * `onChange` (to reload the list), and the last verification event of each connection is kept
 * for its Verify button.
 */
export function useTeamEvents(teamId: string, onChange: () => void) {
  const client = useClient();
  const [checks, setChecks] = useState<Record<string, Check>>({});
  const [liveError, setLiveError] = useState<string | null>(null);
  const latestOnChange = useRef(onChange);
  useEffect(() => {
    latestOnChange.current = onChange;
  });

  useEffect(() => {
    const connections = client.subscription(ConnectionEventsDocument, { teamId }).subscribe(({ error }) => {
      if (error) return setLiveError(`Live updates stopped: ${errorMessage(error)}`);
      latestOnChange.current();
    });
    const verifications = client.subscription(VerificationEventsDocument, { teamId }).subscribe(({ data, error }) => {
      if (error) return setLiveError(`Live updates stopped: ${errorMessage(error)}`);
      const event = data?.verificationEvents;
      if (!event) return;
      setChecks((known) => ({ ...known, [event.connectionId]: event }));
      if (event.phase === "FINISHED") latestOnChange.current();
    });
    return () => {
      connections.unsubscribe();
      verifications.unsubscribe();
    };
  }, [client, teamId]);

  return { checks, liveError };
}
