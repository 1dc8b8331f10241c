import { runSimulation } from './test/support/fold-simulation.ts'
try { runSimulation({ seed: -2111521497, peers: 4, steps: 273, liveEjections: true }); console.log('ok') } catch (e) { console.log('FAIL', (e as Error).message.slice(0, 500)) }
