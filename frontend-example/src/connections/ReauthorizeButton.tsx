import { useState } from "react";
import { useMutation } from "urql";
import { ErrorText } from "../ErrorText";
import { changeWithConsent } from "../consent";
import { errorMessage } from "../errors";
import { ReauthorizeConnectionDocument } from "../gql/graphql";

type Props = { connectionId: string; onChanged: () => void };

/** A new OAuth consent for the connection; its status follows when the callback completes. */
export function ReauthorizeButton({ connectionId, onChanged }: Props) {
  const [, reauthorize] = useMutation(ReauthorizeConnectionDocument);
  const [waiting, setWaiting] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  const start = async () => {
    setWaiting(true);
    setProblem(null);
    const outcome = await changeWithConsent(true, async () => {
      const answer = await reauthorize({ id: connectionId });
      return { error: answer.error, authorizationUrl: answer.data?.reauthorizeConnection.authorizationUrl };
    });
    setWaiting(false);
    setProblem(outcome.apiError ? errorMessage(outcome.apiError) : (outcome.consentError ?? null));
    onChanged();
  };

  return (
    <span>
      <button type="button" onClick={start} disabled={waiting}>
        {waiting ? "Waiting for consent..." : "Reauthorize"}
      </button>
      <ErrorText message={problem} />
    </span>
  );
}
