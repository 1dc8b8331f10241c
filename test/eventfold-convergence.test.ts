/**
 * Convergence properties of the EventFold: 2-7 simulated participants exchanging diffs and
 * full merges over a network that reorders, duplicates and drops messages, with concurrent
 * events, joins racing events, ejections, renegades and system errors. Once quiet, every
 * replica agrees on everything, every event's consistent output is the same wherever it was
 * produced, no infimum moved backwards and nothing is left outstanding.
 */
import { test } from 'node:test'
import fc from 'fast-check'
import { propertyParameters } from './support/property.js'
import { runSimulation } from './support/fold-simulation.js'

test('replicas converge on one infimum, projection and participant set once the network is quiet', () => {
  fc.assert(
    fc.property(
      fc.record({ seed: fc.integer(), peers: fc.integer({ min: 2, max: 7 }), steps: fc.integer({ min: 10, max: 300 }) }),
      plan => { runSimulation(plan) }
    ),
    propertyParameters('eventfold convergence', 300)
  )
})

test('first-hand merges converge the same way: believing each replica only about itself loses nothing', () => {
  fc.assert(
    fc.property(
      fc.record({ seed: fc.integer(), peers: fc.integer({ min: 2, max: 7 }), steps: fc.integer({ min: 10, max: 300 }) }),
      plan => { runSimulation({ ...plan, firstHand: true }) }
    ),
    propertyParameters('eventfold convergence, first-hand', 300)
  )
})
