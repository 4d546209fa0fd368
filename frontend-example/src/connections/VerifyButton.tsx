import { useMutation } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import { VerifyConnectionDocument } from "../gql/graphql";
import type { Check } from "./useTeamEvents";

type Props = { connectionId: string; check: Check | undefined; onChanged: () => void };

/** Starts a check; what it shows follows the team's verification events, whoever started the check. */
export function VerifyButton({ connectionId, check, onChanged }: Props) {
  const [{ fetching, error }, verify] = useMutation(VerifyConnectionDocument);
  const running = check?.phase === "STARTED";
  const result = check?.phase === "FINISHED" ? check.verification : null;

  const start = async () => {
    const answer = await verify({ id: connectionId });
    if (!answer.error) onChanged();
  };

  return (
    <span className="verify">
      <button type="button" onClick={start} disabled={running || fetching}>
        {running ? "Verifying..." : "Verify"}
      </button>
      {result?.outcome === "OK" && <span className="ok">✓ Verified</span>}
      {result && result.outcome !== "OK" && <ErrorText message={result.message ?? result.outcome} />}
      {error && <ErrorText message={errorMessage(error)} />}
    </span>
  );
}
