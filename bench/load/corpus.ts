/**
 * The fixed text prompts are cut from. It is tokenized once (by the server's /tokenize or a local
 * tokenizer.json) and its ids are cycled, so a prompt of n tokens is exactly n ids whatever the
 * tokenizer. Plain English prose, written for this benchmark.
 */
export const CORPUS_TEXT = `The river starts as snowmelt high in the mountains, a thin thread of water that slips between
stones and gathers itself in small pools before it finds the slope again. By the time it reaches
the first village it has become a stream wide enough for a footbridge, and the people who live
there measure the seasons by its voice: loud and brown in spring, clear and patient in summer,
quiet under a skin of ice in the coldest weeks of winter.

Below the village the valley opens. Farmers have cut channels from the river to their fields,
and every channel has a wooden gate that is opened at dawn and closed at dusk according to a
schedule older than anyone can remember. The schedule is written in a ledger kept at the mill.
When two farmers argue about water, they do not argue with each other; they go to the mill,
open the ledger, and read what was agreed by their grandparents. Most arguments end there.

The mill itself has been rebuilt three times. The first building burned, the second was taken
by a flood, and the third, the one that stands now, was built of stone on higher ground with a
long race that brings the water to the wheel from a safe distance. The miller likes to say that
the river is a good neighbour as long as you remember that it was here first.

Further down, the valley narrows into a gorge and the river runs fast and deep. Engineers once
proposed a dam there. They drew careful plans, counted the cost of concrete and steel, and
estimated how much power the turbines would produce in a dry year and in a wet one. The plans
were debated for a decade. In the end the town chose to build a smaller station beside the
gorge instead, one that takes only part of the flow and gives it back a few hundred metres
downstream. It produces less power, but the fish still climb the river every autumn, and the
gorge still fills with the sound of falling water.

Past the gorge the land flattens and the river slows. It meanders through meadows and marshes,
leaving oxbow lakes where it once flowed and building new banks of sand and silt on the inside
of every bend. Birds gather in the shallows by the thousand during the spring migration.
Scientists come each year to count them, walking the same paths at the same hours so that the
numbers can be compared from one decade to the next. Their notebooks show which species are
arriving earlier, which are leaving later, and which no longer come at all.

At the coast the river divides into a dozen channels and meets the sea through a delta of
islands and reeds. The water there is neither fresh nor salt, and the creatures that live in it
have learned to bear both. Fishermen set their nets at the mouths of the channels when the tide
turns. Their boats are painted in bright colours so that they can be seen through the morning
fog, and every family has its own pattern, passed down like a name.

If you follow a single drop of water from the mountain to the sea, the journey takes about
three weeks in summer and less than one in spring. Along the way it turns a wheel, waters a
field, lights a lamp, carries a fish, and finally loses itself in the ocean, where the sun will
lift it again into the clouds that drift back toward the mountains.
`;

/** Repeats `ids` (cyclically) from `offset` until `length` ids are taken. */
export function cycleIds(ids: readonly number[], offset: number, length: number): number[] {
  if (ids.length === 0) throw new Error("cycleIds: no ids to cut prompts from");
  const out = new Array<number>(length);
  for (let j = 0; j < length; j++) out[j] = ids[(offset + j) % ids.length]!;
  return out;
}
